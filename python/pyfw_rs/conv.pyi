"""Type stub of pyfw_rs.conv: the convolution family's classes (written once in pyfw/conv.py) over
the native ``_SpatialLayer`` (kept in sync by tests/contract/test_rs_native.py)."""

from typing import Any, Optional, Union

from ._native import Generator, Tensor, _SpatialLayer

class Conv1d(_SpatialLayer):
    """A 1-D convolution over (N, C, L), as torch.nn.Conv1d with zero padding and groups=1."""
    in_channels: int
    out_channels: int
    kernel_size: tuple[int]
    stride: tuple[int]
    padding: tuple[int]
    dilation: tuple[int]
    weight: Tensor
    bias: Optional[Tensor]
    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1,
                 padding: Any = 0, dilation: Any = 1, groups: int = 1, bias: bool = True,
                 padding_mode: str = 'zeros', generator: Optional[Generator] = None) -> None: ...
    def forward(self, x: Any) -> Tensor: ...
    def backward(self, grad: Any) -> Tensor: ...
    def __repr__(self) -> str: ...

class Conv2d(_SpatialLayer):
    """A 2-D convolution over (N, C, H, W), as torch.nn.Conv2d with zero padding and groups=1."""
    in_channels: int
    out_channels: int
    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    weight: Tensor
    bias: Optional[Tensor]
    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1,
                 padding: Any = 0, dilation: Any = 1, groups: int = 1, bias: bool = True,
                 padding_mode: str = 'zeros', generator: Optional[Generator] = None) -> None: ...
    def forward(self, x: Any) -> Tensor: ...
    def backward(self, grad: Any) -> Tensor: ...
    def __repr__(self) -> str: ...

class ConvTranspose2d(_SpatialLayer):
    """torch.nn.ConvTranspose2d with zero padding, groups=1 and dilation=1; weight (in, out, kH, kW)."""
    in_channels: int
    out_channels: int
    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    output_padding: tuple[int, int]
    dilation: tuple[int, int]
    weight: Tensor
    bias: Optional[Tensor]
    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1,
                 padding: Any = 0, output_padding: Any = 0, groups: int = 1, bias: bool = True,
                 dilation: Any = 1, padding_mode: str = 'zeros', generator: Optional[Generator] = None) -> None: ...
    def forward(self, x: Any) -> Tensor: ...
    def backward(self, grad: Any) -> Tensor: ...
    def __repr__(self) -> str: ...

class MaxPool2d(_SpatialLayer):
    """The maximum of each window over (N, C, H, W), the padding being -inf."""
    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0) -> None: ...
    def forward(self, x: Any) -> Tensor: ...
    def backward(self, grad: Any) -> Tensor: ...
    def __repr__(self) -> str: ...

class AvgPool2d(_SpatialLayer):
    """The mean of each window over (N, C, H, W), the zero padding counted."""
    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0) -> None: ...
    def forward(self, x: Any) -> Tensor: ...
    def backward(self, grad: Any) -> Tensor: ...
    def __repr__(self) -> str: ...

class Upsample(_SpatialLayer):
    """Nearest upsampling of (N, C, H, W) by an integer scale_factor (an int or a pair)."""
    scale_factor: tuple[int, int]
    mode: str
    def __init__(self, size: Any = None, scale_factor: Union[int, tuple[int, int], None] = None,
                 mode: str = 'nearest', align_corners: Any = None, recompute_scale_factor: Any = None) -> None: ...
    def forward(self, x: Any) -> Tensor: ...
    def backward(self, grad: Any) -> Tensor: ...
    def __repr__(self) -> str: ...
