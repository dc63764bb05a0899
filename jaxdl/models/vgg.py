"""VGG: Simonyan & Zisserman 2015, "Very deep convolutional networks for large-scale image recognition", Table 1
(configurations A, A-LRN, B, C, D, E) and Table 2 (parameters: 133, 133, 133, 134, 138, 144 million; claim C8).

Blocks of 3×3 convolutions (stride 1, padding 1, ReLU) separated by 2×2/2 max pooling, 64-128-256-512-512 maps;
A-LRN adds a local response normalisation after the first convolution; C has a 1×1 convolution as the last layer of
blocks 3–5 (D has a 3×3 there). Then FC-4096, FC-4096 (ReLU, dropout 0.5) and FC-1000 on the 7×7×512 maps of a
224×224×3 input. As in torchvision an adaptive average pool to 7×7 sits before the classifier: the identity at
224×224, it lets any input size through with the same parameters. With `batch_norm` every convolution is followed
by a batch norm (torchvision's `vgg*_bn`: the convolution keeps its bias, BN adds γ, β per map).

Parameters, all exact (torchvision's published counts for vgg11/13/16/19 and their _bn; C and A-LRN by the same
arithmetic): vgg11 = vgg11_lrn 132,863,336; vgg13 133,047,848; vgg16_c 133,638,952; vgg16 138,357,544;
vgg19 143,667,240; vgg11_bn 132,868,840; vgg13_bn 133,053,736; vgg16_c_bn 133,647,400; vgg16_bn 138,365,992;
vgg19_bn 143,678,248. Rounded to millions these are Table 2's 133/133/133/134/138/144.
"""
from __future__ import annotations

import flax.linen as nn

from jaxdl.errors import UserError
from jaxdl.nn.conv import Conv
from jaxdl.nn.precision import as_float
from jaxdl.models.alexnet import adaptive_avg_pool, classifier, local_response_norm
from jaxdl.registry import MODELS

# Table 1, one tuple per block of (kernel size, maps) convolutions; 'LRN' marks A-LRN's normalisation.
CONFIGS: dict[str, tuple[tuple, ...]] = {
    'A': (((3, 64),), ((3, 128),), ((3, 256), (3, 256)), ((3, 512), (3, 512)), ((3, 512), (3, 512))),
    'A-LRN': (((3, 64), 'LRN'), ((3, 128),), ((3, 256), (3, 256)), ((3, 512), (3, 512)), ((3, 512), (3, 512))),
    'B': (((3, 64), (3, 64)), ((3, 128), (3, 128)), ((3, 256), (3, 256)), ((3, 512), (3, 512)),
          ((3, 512), (3, 512))),
    'C': (((3, 64), (3, 64)), ((3, 128), (3, 128)), ((3, 256), (3, 256), (1, 256)),
          ((3, 512), (3, 512), (1, 512)), ((3, 512), (3, 512), (1, 512))),
    'D': (((3, 64), (3, 64)), ((3, 128), (3, 128)), ((3, 256),) * 3, ((3, 512),) * 3, ((3, 512),) * 3),
    'E': (((3, 64), (3, 64)), ((3, 128), (3, 128)), ((3, 256),) * 4, ((3, 512),) * 4, ((3, 512),) * 4),
}


class VGG(nn.Module):
  """A VGG network; `configuration` is a column of Table 1: 'A' | 'A-LRN' | 'B' | 'C' | 'D' | 'E'.

  Layers conv{block}_{i} (+ bn{block}_{i}), fc6, fc7, fc8. The registered names fix the configuration and
  `batch_norm`; both stay config keys. fc_width (4096) and adaptive_pool (7×7) follow the paper/torchvision.
  """
  num_outputs: int = 1000
  configuration: str = 'D'
  batch_norm: bool = False
  dropout_rate: float = 0.5
  fc_width: int = 4096
  adaptive_pool: bool = True

  def __post_init__(self):
    super().__post_init__()
    if self.configuration not in CONFIGS:
      raise UserError(f'model.configuration={self.configuration!r}', 'one of: ' + ', '.join(CONFIGS),
                      'fix config.model.configuration')

  @nn.compact
  def __call__(self, x, train: bool = False):
    x = as_float(x)
    init = nn.initializers.he_normal()
    for b, block in enumerate(CONFIGS[self.configuration], start=1):
      i = 0
      for layer in block:
        if layer == 'LRN':
          x = local_response_norm(x)
          continue
        i += 1
        k, maps = layer
        x = Conv(maps, (k, k), padding=((k // 2, k // 2),) * 2, kernel_init=init, name=f'conv{b}_{i}')(x)
        if self.batch_norm:
          x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, name=f'bn{b}_{i}')(x)
        x = nn.relu(x)
      x = nn.max_pool(x, (2, 2), strides=(2, 2), padding='VALID')
    self.sow('intermediates', 'features', x)        # 7×7×512 at 224×224
    if self.adaptive_pool:
      x = adaptive_avg_pool(x, (7, 7))
    return classifier(x, self.num_outputs, self.fc_width, self.dropout_rate, train)


def _register(name: str, configuration: str, batch_norm: bool, what: str) -> None:
  cls = type(name.upper(), (VGG,), {'__annotations__': {'configuration': 'str', 'batch_norm': 'bool'},
                                    'configuration': configuration, 'batch_norm': batch_norm,
                                    '__module__': __name__, '__doc__': f'VGG configuration {configuration}'
                                    f'{" with batch norm" if batch_norm else ""} ({what}); see `VGG`.'})
  globals()[cls.__name__] = cls
  MODELS.register(name, example_input_shape=(224, 224, 3), heavy=True,
                  description=f'VGG {configuration}{" + BN" if batch_norm else ""}: {what}')(cls)


for _name, _cfg, _what in (('vgg11', 'A', '11 weight layers, 133M'), ('vgg11_lrn', 'A-LRN', 'A + LRN, 133M'),
                           ('vgg13', 'B', '13 weight layers, 133M'),
                           ('vgg16_c', 'C', '16 weight layers, 1×1 convs in blocks 3-5, 134M'),
                           ('vgg16', 'D', '16 weight layers, 138M'), ('vgg19', 'E', '19 weight layers, 144M')):
  _register(_name, _cfg, False, _what)
  if _cfg != 'A-LRN':
    _register(f'{_name}_bn', _cfg, True, _what)
