"""Flax models, by name in MODELS: the MLP of MER and La-MAML (MNIST
benchmarks), GEM's reduced ResNet-18 (CIFAR-100, miniImageNet) and
La-MAML's convolutional network pc_cnn (CIFAR-100, TinyImageNet).

Their convolutions go through `patch_conv.conv_general_dilated`: on the CPU
image patches times a matrix (fast inside the task's compiled loop), else
XLA's convolution; the parameters are flax's `nn.Conv` ones either way."""

import functools
from typing import Any, Callable, Optional, Sequence

import flax.linen as nn
import jax.numpy as jnp

from emcl_jax import patch_conv

_CONV = patch_conv.conv_general_dilated
NORMS = ('group', 'instance', 'layer', 'batch', 'none')


class MLP(nn.Module):
  """Fully connected ReLU network, 784-100-100-10 by default (Section V).

  Inputs are uint8 pixels or floats; uint8 is scaled to [0, 1] here, on
  device, inside the jitted step. Single head: one shared classifier.
  """
  hidden: Sequence[int] = (100, 100)
  num_classes: int = 10

  @nn.compact
  def __call__(self, x):
    if x.dtype == jnp.uint8:
      x = x.astype(jnp.float32) / 255.0
    x = x.reshape((x.shape[0], -1))
    for width in self.hidden:
      x = nn.relu(nn.Dense(width)(x))
    return nn.Dense(self.num_classes)(x)


class FrozenBatchNorm(nn.Module):
  """BatchNorm with frozen statistics: torch's BatchNorm2d in eval mode at
  its initial running mean 0 and variance 1, i.e. the per-channel affine map
  x / sqrt(1 + eps) * scale + bias. Parameters: scale and bias [C]."""
  epsilon: float = 1e-5

  @nn.compact
  def __call__(self, x):
    scale = self.param('scale', nn.initializers.ones, (x.shape[-1],))
    bias = self.param('bias', nn.initializers.zeros, (x.shape[-1],))
    return x * (scale / jnp.sqrt(1.0 + self.epsilon)) + bias


def norm_layer(norm: str, num_groups: int = 4,
               channels: Sequence[int] = ()) -> Callable[..., Any]:
  """The normalisation factory `f(name=...) -> layer` for `norm`.

  Args:
    norm: one of NORMS: 'group' (GroupNorm, `num_groups` groups), 'instance'
      (one channel per group), 'layer' (one group), 'batch' (frozen
      statistics, FrozenBatchNorm), 'none' (identity, no parameters).
    num_groups: groups of 'group'.
    channels: the channel counts the layer will see, to check `num_groups`
      divides them.

  Raises:
    ValueError: an unknown norm, or num_groups not dividing the channels.
  """
  if norm not in NORMS:
    raise ValueError(f'unknown norm {norm!r}; use one of {NORMS}')
  if norm == 'group' and (num_groups < 1 or
                          any(c % num_groups for c in channels)):
    raise ValueError(f'num_groups={num_groups} must divide the channel '
                     f'counts {tuple(channels)}')
  # epsilon 1e-5 as torch's BatchNorm2d.
  if norm == 'group':
    return functools.partial(nn.GroupNorm, num_groups=num_groups,
                             epsilon=1e-5)
  if norm == 'instance':
    return functools.partial(nn.GroupNorm, num_groups=None, group_size=1,
                             epsilon=1e-5)
  if norm == 'layer':
    return functools.partial(nn.GroupNorm, num_groups=1, epsilon=1e-5)
  if norm == 'batch':
    return FrozenBatchNorm
  return lambda name=None: (lambda x: x)


def _conv3x3(features: int, strides: int, name: str) -> nn.Conv:
  """3x3 convolution, padding 1 on each side (as torch's), no bias."""
  return nn.Conv(features, (3, 3), strides=strides, padding=((1, 1), (1, 1)),
                 use_bias=False, name=name, conv_general_dilated=_CONV)


class BasicBlock(nn.Module):
  """ResNet basic block: relu(norm(conv3x3(relu(norm(conv3x3(x))))) +
  shortcut(x)), the shortcut a 1x1 convolution and norm when the stride or
  the channel count changes, else the identity."""
  features: int
  strides: int
  norm: Callable[..., Any]

  @nn.compact
  def __call__(self, x):
    y = _conv3x3(self.features, self.strides, 'conv1')(x)
    y = nn.relu(self.norm(name='norm1')(y))
    y = _conv3x3(self.features, 1, 'conv2')(y)
    y = self.norm(name='norm2')(y)
    if self.strides != 1 or x.shape[-1] != self.features:
      x = nn.Conv(self.features, (1, 1), strides=self.strides,
                  padding='VALID', use_bias=False, name='shortcut_conv',
                  conv_general_dilated=_CONV)(x)
      x = self.norm(name='shortcut_norm')(x)
    return nn.relu(y + x)


def prepare_images(x, mean: Optional[Sequence[float]] = None,
                   std: Optional[Sequence[float]] = None):
  """Images to float [B, H, W, 3] on device.

  uint8 is scaled to [0, 1]; MNIST's [B, 28, 28] (or flat [B, 784]) is
  zero-padded to 32x32 and repeated to 3 channels; then (x - mean) / std per
  channel when given.
  """
  if x.ndim == 2 and x.shape[1] == 28 * 28:
    x = x.reshape((x.shape[0], 28, 28))
  if x.ndim == 3:
    x = x[..., None]
  if x.dtype == jnp.uint8:
    x = x.astype(jnp.float32) / 255.0
  if x.shape[-1] == 1:
    if x.shape[1:3] == (28, 28):
      x = jnp.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)))
    x = jnp.repeat(x, 3, axis=-1)
  if mean is not None:
    x = x - jnp.asarray(mean, x.dtype)
  if std is not None:
    x = x / jnp.asarray(std, x.dtype)
  return x


class ResNet18Reduced(nn.Module):
  """GEM's reduced ResNet-18 (Lopez-Paz & Ranzato 2017, model/common.py,
  `ResNet18(nclasses, nf=20)`), three times fewer feature maps than
  ResNet-18.

  conv3x3(3 -> nf, stride 1) + norm + relu; four stages of two BasicBlocks
  with nf, 2nf, 4nf, 8nf channels and first strides 1, 2, 2, 2 (a 1x1
  convolution + norm shortcut where the stride or width changes); average
  pooling with window and stride 4 (floor); flatten; a linear layer to
  `num_classes` (one shared head; multi-head tasks mask its logits).

  Parameters (convolutions without bias, two per channel for each norm, as
  torch counts BatchNorm's weight and bias; running statistics are not
  parameters): 1,093,140 before the linear layer for nf=20, then the linear
  layer (F + 1) * num_classes, where F = 8nf * p * p and p the pooled size:
  32x32 inputs (and MNIST, padded to 32x32) end the last stage at 4x4, p=1,
  F=160, 1,109,240 parameters for 100 classes; 84x84 inputs end at 11x11,
  p=2, F=640, 1,157,240 parameters for 100 classes. (GEM's own code fixes
  F=160 and so runs on 32x32 only; the 640 is what its pooling gives at
  84x84.)

  Normalisation (`norm`): meta-continual learners take inner steps on one
  sample, where batch statistics degenerate to one image's (and a sample's
  output would otherwise depend on the rest of its batch), and the engine
  keeps no mutable state (no running averages). The default 'group' is
  GroupNorm with `num_groups` groups (4: 5 to 40 channels per group),
  statistics per sample and group: well defined for one sample, each
  sample's output independent of its batch, and the same per-channel scale
  and bias as BatchNorm (so the same parameter count).
  'instance' and 'layer' are its one-channel and one-group variants;
  'batch' is BatchNorm with frozen statistics (eval mode at mean 0, var 1:
  a per-channel affine layer; same count); 'none' drops the norms (fewer
  parameters).

  Inputs: uint8 or float [B, H, W, 3] images (uint8 scaled to [0, 1] on
  device, then optionally standardised by `mean`/`std`), or MNIST's
  [B, 28, 28] / [B, 784], padded to 32x32 and repeated to 3 channels.
  Weights use flax's default initialisers (not torch's).
  """
  num_classes: int = 100
  nf: int = 20
  norm: str = 'group'
  num_groups: int = 4
  mean: Optional[Sequence[float]] = None
  std: Optional[Sequence[float]] = None

  @property
  def widths(self) -> tuple[int, ...]:
    """Channels of the four stages: nf, 2nf, 4nf, 8nf."""
    return tuple(self.nf * m for m in (1, 2, 4, 8))

  @nn.compact
  def __call__(self, x):
    widths = self.widths
    norm = norm_layer(self.norm, self.num_groups, widths)
    x = prepare_images(x, self.mean, self.std)
    x = nn.relu(norm(name='norm1')(_conv3x3(self.nf, 1, 'conv1')(x)))
    for stage, (width, strides) in enumerate(zip(widths, (1, 2, 2, 2))):
      for block in range(2):
        x = BasicBlock(width, strides if block == 0 else 1, norm,
                       name=f'layer{stage + 1}_{block}')(x)
    x = nn.avg_pool(x, (4, 4), strides=(4, 4), padding='VALID')
    x = x.reshape((x.shape[0], -1))
    return nn.Dense(self.num_classes, name='linear')(x)


# pc_cnn's layers by image side, as La-MAML's model/meta/modelfactory.py
# picks them by dataset: side -> (convolutions, hidden width).
PC_CNN_LAYERS = {64: (4, 640), 32: (3, 320)}


class PCCNN(nn.Module):
  """La-MAML's `pc_cnn` (Gupta et al. 2020, montrealrobotics/La-MAML,
  model/meta/modelfactory.py, run by model/meta/learner.py).

  `num_convs` 3x3 convolutions with `channels` output channels, stride 2,
  padding 1 and a bias, each followed by relu; flatten; linear to `hidden`,
  relu, linear to `hidden`, relu, linear to `num_classes` (one shared head;
  multi-head tasks mask its logits, as La-MAML's offsets do). La-MAML takes
  4 convolutions and hidden 640 for TinyImageNet (64x64: 64 -> 32 -> 16 ->
  8 -> 4) and 3 and 320 for CIFAR-100 (32x32: 32 -> 16 -> 8 -> 4), both with
  160 channels, so both flatten 4 * 4 * 160 = 2,560 features; left None,
  `num_convs` and `hidden` follow the image side by PC_CNN_LAYERS (MNIST,
  padded to 32x32, gets CIFAR's); other sides need both given.

  Parameters (weights plus biases), as torch counts La-MAML's: the first
  convolution (3 * 9 + 1) * 160 = 4,480, each further one (160 * 9 + 1) *
  160 = 230,560. TinyImageNet, 200 classes: 4,480 + 3 * 230,560 +
  (2,560 + 1) * 640 + (640 + 1) * 640 + (640 + 1) * 200 = 4,480 + 691,680 +
  1,639,040 + 410,240 + 128,200 = 2,873,640. CIFAR-100, 100 classes: 4,480 +
  2 * 230,560 + (2,560 + 1) * 320 + (320 + 1) * 320 + (320 + 1) * 100 =
  4,480 + 461,120 + 819,520 + 102,720 + 32,100 = 1,419,940.

  Initialisation as La-MAML's default (without --xav_init): every kernel
  normal with variance 2 / fan_in (torch's kaiming_normal_), biases zero.
  Features are flattened channel-major, as torch's NCHW `view`, so the first
  linear layer's kernel is torch's weight transposed, row for row.
  Deviations: inputs are NHWC; the image preparation is `prepare_images`'s
  (uint8 to [0, 1], then `mean`/`std` if given: La-MAML normalises
  TinyImageNet by (0.485, 0.456, 0.406) / (0.229, 0.224, 0.225) and
  CIFAR-100 by (0.5071, 0.4867, 0.4408) / (0.2675, 0.2565, 0.2761) in its
  data loaders, dataloaders/idataset.py, and augments with random crops and
  flips, which are not done here).
  """
  num_classes: int = 200
  channels: int = 160
  num_convs: Optional[int] = None
  hidden: Optional[int] = None
  mean: Optional[Sequence[float]] = None
  std: Optional[Sequence[float]] = None

  def layers(self, height: int, width: int) -> tuple[int, int]:
    """(num_convs, hidden) for images of this size.

    Raises:
      ValueError: only one of num_convs and hidden given, or neither and a
        size without a default (square, a side in PC_CNN_LAYERS).
    """
    if (self.num_convs is None) != (self.hidden is None):
      raise ValueError('give pc_cnn both num_convs and hidden, or neither '
                       '(then they follow the image size)')
    if self.num_convs is not None:
      return self.num_convs, self.hidden
    if height != width or height not in PC_CNN_LAYERS:
      raise ValueError(f'pc_cnn has no layers for {height}x{width} images; '
                       'give num_convs and hidden (defaults exist for '
                       f'sides {sorted(PC_CNN_LAYERS)})')
    return PC_CNN_LAYERS[height]

  @nn.compact
  def __call__(self, x):
    x = prepare_images(x, self.mean, self.std)
    num_convs, hidden = self.layers(x.shape[1], x.shape[2])
    kaiming = nn.initializers.variance_scaling(2.0, 'fan_in', 'normal')
    for i in range(num_convs):
      x = nn.Conv(self.channels, (3, 3), strides=2, padding=((1, 1), (1, 1)),
                  kernel_init=kaiming, name=f'conv{i + 1}',
                  conv_general_dilated=_CONV)(x)
      x = nn.relu(x)
    x = x.transpose((0, 3, 1, 2)).reshape((x.shape[0], -1))
    for i in range(2):
      x = nn.relu(nn.Dense(hidden, kernel_init=kaiming,
                           name=f'linear{i + 1}')(x))
    return nn.Dense(self.num_classes, kernel_init=kaiming, name='linear3')(x)


MODELS = {
    'mlp': MLP,
    'resnet18_reduced': ResNet18Reduced,
    'pc_cnn': PCCNN,
}


def make(name: str, num_classes: int, **kwargs) -> nn.Module:
  """The model `name` of MODELS with a `num_classes`-way output.

  Args:
    name: 'mlp', 'resnet18_reduced' or 'pc_cnn'.
    num_classes: output size (TaskSet.num_classes).
    **kwargs: further attributes (e.g. hidden=(100, 100), norm='batch').

  Raises:
    ValueError: an unknown name or norm, or pc_cnn given only one of
      num_convs and hidden.
  """
  if name not in MODELS:
    raise ValueError(f'unknown model {name!r}; use one of '
                     f'{", ".join(MODELS)}')
  model = MODELS[name](num_classes=num_classes, **kwargs)
  if isinstance(model, ResNet18Reduced):
    norm_layer(model.norm, model.num_groups, model.widths)
  if isinstance(model, PCCNN) and (model.num_convs, model.hidden) != (
      None, None):
    model.layers(0, 0)  # only one of the two given fails here
  return model
