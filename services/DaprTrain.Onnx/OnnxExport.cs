using Google.Protobuf;
using Onnx;

namespace DaprTrain.Onnx;

/// <summary>One named parameter of a trained model, as TorchSharp's named_parameters() lists it.</summary>
public sealed record NamedParameter(string Name, long[] Shape, float[] Values);

/// <summary>
/// Writes a trained DaprTrain model (an mlp of any width, the cnn or the resnet) as an ONNX graph (opset 13) that takes raw MNIST pixels
/// ("pixels", float [N,1,28,28], 0..255) and returns class logits ("logits", [N,10]). The normalisation the
/// trainer applies to its inputs is the first two nodes, so a caller feeds pixels as they are.
/// TorchSharp cannot export ONNX itself; the graph is built from the architecture, which this class checks
/// against the parameters' names and shapes.
/// </summary>
public static class OnnxExport
{
    public const string InputName = "pixels";
    public const string OutputName = "logits";
    private const int Float = (int)TensorProto.Types.DataType.Float;

    public static byte[] ToBytes(string model, IReadOnlyList<NamedParameter> parameters, float mean, float standardDeviation)
    {
        if (!(standardDeviation > 0)) throw new ArgumentException($"standard deviation must be positive (got {standardDeviation}).", nameof(standardDeviation));
        var byName = parameters.ToDictionary(p => p.Name, StringComparer.Ordinal);
        foreach (var parameter in parameters)
        {
            long count = parameter.Shape.Aggregate(1L, (a, b) => a * b);
            if (count != parameter.Values.Length) throw new ArgumentException($"parameter '{parameter.Name}' has {parameter.Values.Length} values for shape [{string.Join(",", parameter.Shape)}].");
        }

        var graph = new GraphProto { Name = $"daprtrain-{model}" };
        graph.Input.Add(Tensor(InputName, "N", 1, 28, 28));
        graph.Output.Add(Tensor(OutputName, "N", 10));
        graph.Initializer.Add(Constant("pixel_mean", mean * 255f));
        graph.Initializer.Add(Constant("pixel_scale", standardDeviation * 255f));
        graph.Node.Add(Node("Sub", [InputName, "pixel_mean"], "centred"));
        graph.Node.Add(Node("Div", ["centred", "pixel_scale"], "normalised"));

        switch (model)
        {
            case "mlp" or "mlp-512" or "mlp-2048": Mlp(graph, byName); break;
            case "cnn": Cnn(graph, byName); break;
            case "resnet": ResNet(graph, byName); break;
            default: throw new ArgumentException($"unknown model '{model}' (mlp, mlp-512, mlp-2048, cnn or resnet).", nameof(model));
        }

        var unused = byName.Keys.Except(graph.Initializer.Select(i => i.Name)).ToList();
        if (unused.Count > 0) throw new ArgumentException($"parameters the {model} graph does not use: {string.Join(", ", unused)}.");

        var onnx = new ModelProto { IrVersion = 8, ProducerName = "DaprTrain", ProducerVersion = "0.1.0", Graph = graph };
        onnx.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 13 });
        return onnx.ToByteArray();
    }

    private static void Mlp(GraphProto graph, Dictionary<string, NamedParameter> parameters)
    {
        graph.Node.Add(Node("Flatten", ["normalised"], "flat", Int("axis", 1)));
        Linear(graph, parameters, "fc1", "flat", "hidden", inputs: 28 * 28);
        graph.Node.Add(Node("Relu", ["hidden"], "activated"));
        Linear(graph, parameters, "fc2", "activated", OutputName, inputs: (int)Require(parameters, "fc1.weight", 2).Shape[0]);
    }

    private static void Cnn(GraphProto graph, Dictionary<string, NamedParameter> parameters)
    {
        Conv(graph, parameters, "conv1", "normalised", "c1", channels: 1, kernel: 5);
        graph.Node.Add(Node("Relu", ["c1"], "r1"));
        graph.Node.Add(Node("MaxPool", ["r1"], "p1", Ints("kernel_shape", 2, 2), Ints("strides", 2, 2)));
        Conv(graph, parameters, "conv2", "p1", "c2", channels: 16, kernel: 5);
        graph.Node.Add(Node("Relu", ["c2"], "r2"));
        graph.Node.Add(Node("MaxPool", ["r2"], "p2", Ints("kernel_shape", 2, 2), Ints("strides", 2, 2)));
        graph.Node.Add(Node("Flatten", ["p2"], "flat", Int("axis", 1)));
        Linear(graph, parameters, "fc1", "flat", "h", inputs: 32 * 7 * 7);
        graph.Node.Add(Node("Relu", ["h"], "rh"));
        Linear(graph, parameters, "fc2", "rh", OutputName, inputs: 128);
    }

    /// <summary>The graph of Training's ResNet: stem, pool, residual block, pool, widening convolution, residual block, two linear layers.</summary>
    private static void ResNet(GraphProto graph, Dictionary<string, NamedParameter> parameters)
    {
        Conv(graph, parameters, "stem", "normalised", "s", channels: 1, kernel: 3);
        graph.Node.Add(Node("Relu", ["s"], "rs"));
        graph.Node.Add(Node("MaxPool", ["rs"], "p1", Ints("kernel_shape", 2, 2), Ints("strides", 2, 2)));
        int stemChannels = (int)Require(parameters, "stem.weight", 4).Shape[0];
        ResidualBlock(graph, parameters, "block1", "p1", "b1", stemChannels);
        graph.Node.Add(Node("MaxPool", ["b1"], "p2", Ints("kernel_shape", 2, 2), Ints("strides", 2, 2)));
        Conv(graph, parameters, "widen", "p2", "w", channels: stemChannels, kernel: 3);
        graph.Node.Add(Node("Relu", ["w"], "rw"));
        int wideChannels = (int)Require(parameters, "widen.weight", 4).Shape[0];
        ResidualBlock(graph, parameters, "block2", "rw", "b2", wideChannels);
        graph.Node.Add(Node("Flatten", ["b2"], "flat", Int("axis", 1)));
        Linear(graph, parameters, "fc1", "flat", "h", inputs: wideChannels * 7 * 7);
        graph.Node.Add(Node("Relu", ["h"], "rh"));
        Linear(graph, parameters, "fc2", "rh", OutputName, inputs: (int)Require(parameters, "fc1.weight", 2).Shape[0]);
    }

    /// <summary>relu(x + conv2(relu(conv1(x)))), both convolutions 3x3 with padding 1 and as many channels out as in.</summary>
    private static void ResidualBlock(GraphProto graph, Dictionary<string, NamedParameter> parameters, string block, string input, string output, int channels)
    {
        Conv(graph, parameters, $"{block}.conv1", input, $"{block}.c1", channels, kernel: 3);
        graph.Node.Add(Node("Relu", [$"{block}.c1"], $"{block}.r1"));
        Conv(graph, parameters, $"{block}.conv2", $"{block}.r1", $"{block}.c2", channels, kernel: 3);
        if (Require(parameters, $"{block}.conv2.weight", 4).Shape[0] != channels)
        {
            throw new ArgumentException($"{block}.conv2 has {Require(parameters, $"{block}.conv2.weight", 4).Shape[0]} output channels; the shortcut needs {channels}.");
        }
        graph.Node.Add(Node("Add", [$"{block}.c2", input], $"{block}.sum"));
        graph.Node.Add(Node("Relu", [$"{block}.sum"], output));
    }

    /// <summary>y = x W^T + b, as torch's Linear (weight [out, in]).</summary>
    private static void Linear(GraphProto graph, Dictionary<string, NamedParameter> parameters, string layer, string input, string output, int inputs)
    {
        var weight = Require(parameters, $"{layer}.weight", 2);
        var bias = Require(parameters, $"{layer}.bias", 1);
        if (weight.Shape[1] != inputs || bias.Shape[0] != weight.Shape[0]) throw new ArgumentException($"{layer} has shape [{string.Join(",", weight.Shape)}]; expected [*, {inputs}] with a matching bias.");
        graph.Initializer.Add(Initializer(weight));
        graph.Initializer.Add(Initializer(bias));
        graph.Node.Add(Node("Gemm", [input, weight.Name, bias.Name], output, Int("transB", 1)));
    }

    /// <summary>A square convolution with stride 1 and "same" padding (kernel / 2 each side), as every convolution of the models.</summary>
    private static void Conv(GraphProto graph, Dictionary<string, NamedParameter> parameters, string layer, string input, string output, int channels, int kernel)
    {
        var weight = Require(parameters, $"{layer}.weight", 4);
        var bias = Require(parameters, $"{layer}.bias", 1);
        if (weight.Shape[1] != channels || weight.Shape[2] != kernel || weight.Shape[3] != kernel || bias.Shape[0] != weight.Shape[0])
        {
            throw new ArgumentException($"{layer} has shape [{string.Join(",", weight.Shape)}]; expected [*, {channels}, {kernel}, {kernel}] with a matching bias.");
        }
        graph.Initializer.Add(Initializer(weight));
        graph.Initializer.Add(Initializer(bias));
        int pad = kernel / 2;
        graph.Node.Add(Node("Conv", [input, weight.Name, bias.Name], output, Ints("kernel_shape", kernel, kernel), Ints("pads", pad, pad, pad, pad), Ints("strides", 1, 1)));
    }

    private static NamedParameter Require(Dictionary<string, NamedParameter> parameters, string name, int rank) =>
        parameters.TryGetValue(name, out var parameter) && parameter.Shape.Length == rank
            ? parameter
            : throw new ArgumentException($"the model has no parameter '{name}' of rank {rank}.");

    private static TensorProto Initializer(NamedParameter parameter)
    {
        var tensor = new TensorProto { Name = parameter.Name, DataType = Float };
        tensor.Dims.AddRange(parameter.Shape);
        tensor.FloatData.AddRange(parameter.Values);
        return tensor;
    }

    private static TensorProto Constant(string name, float value)
    {
        var tensor = new TensorProto { Name = name, DataType = Float };
        tensor.FloatData.Add(value);
        return tensor;
    }

    private static ValueInfoProto Tensor(string name, string batch, params long[] dims)
    {
        var shape = new TensorShapeProto();
        shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimParam = batch });
        foreach (long dim in dims) shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = dim });
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = Float, Shape = shape } } };
    }

    private static NodeProto Node(string op, string[] inputs, string output, params AttributeProto[] attributes)
    {
        var node = new NodeProto { OpType = op, Name = output };
        node.Input.AddRange(inputs);
        node.Output.Add(output);
        node.Attribute.AddRange(attributes);
        return node;
    }

    private static AttributeProto Int(string name, long value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    private static AttributeProto Ints(string name, params long[] values)
    {
        var attribute = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        attribute.Ints.AddRange(values);
        return attribute;
    }
}
