"""torchvision's ResNet-18/34 rebuilt with Keras layers, with the PyTorch weights
copied in: the standard architecture of the cross-framework tests and benchmarks.

PyTorch pads symmetrically; Keras' "same" padding of strided layers does not, so
strided convolutions and the stem's max pool get explicit ``ZeroPadding2D`` layers
(zero padding before the max pool is exact: it follows a ReLU).
"""

from __future__ import annotations


def resnet_to_keras(module, input_size: tuple[int, int]):
    """A Keras model (NHWC input) computing what the torchvision ``ResNet`` computes."""
    import keras

    layers = keras.layers
    copies = []

    def conv(x, torch_conv):
        k, s, p = torch_conv.kernel_size[0], torch_conv.stride[0], torch_conv.padding[0]
        if p:
            x = layers.ZeroPadding2D(p)(x)
        layer = layers.Conv2D(
            torch_conv.out_channels,
            k,
            strides=s,
            padding="valid",
            use_bias=torch_conv.bias is not None,
        )
        x = layer(x)
        weights = [torch_conv.weight.detach().numpy().transpose(2, 3, 1, 0)]
        if torch_conv.bias is not None:
            weights.append(torch_conv.bias.detach().numpy())
        copies.append((layer, weights))
        return x

    def bn(x, torch_bn):
        layer = layers.BatchNormalization(epsilon=torch_bn.eps)
        x = layer(x)
        copies.append(
            (
                layer,
                [
                    t.detach().numpy()
                    for t in (
                        torch_bn.weight,
                        torch_bn.bias,
                        torch_bn.running_mean,
                        torch_bn.running_var,
                    )
                ],
            )
        )
        return x

    inputs = keras.Input((*input_size, 3))
    x = layers.ReLU()(bn(conv(inputs, module.conv1), module.bn1))
    x = layers.MaxPooling2D(3, strides=2)(layers.ZeroPadding2D(1)(x))
    for stage in (module.layer1, module.layer2, module.layer3, module.layer4):
        for block in stage:
            out = layers.ReLU()(bn(conv(x, block.conv1), block.bn1))
            out = bn(conv(out, block.conv2), block.bn2)
            shortcut = x
            if block.downsample is not None:
                shortcut = bn(conv(x, block.downsample[0]), block.downsample[1])
            x = layers.ReLU()(layers.Add()([out, shortcut]))
    dense = layers.Dense(module.fc.out_features)
    outputs = dense(layers.GlobalAveragePooling2D()(x))
    copies.append((dense, [module.fc.weight.detach().numpy().T, module.fc.bias.detach().numpy()]))
    network = keras.Model(inputs, outputs)
    for layer, weights in copies:
        layer.set_weights(weights)
    return network
