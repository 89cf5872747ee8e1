using TorchSharp;
using static TorchSharp.torch;

namespace DaprTrain.Training.Parameters;

public sealed record ParameterSlice(string Name, long Offset, long[] Shape)
{
    public long Length => Shape.Aggregate(1L, (a, b) => a * b);
}

/// <summary>
/// All of a model's parameters in one contiguous float32 tensor and all their gradients in another,
/// with each parameter and each .grad a view into them (the idea of DDP's gradient buckets). Exporting or
/// importing a step's gradient is then one copy of contiguous memory instead of a cat per tensor.
/// </summary>
public sealed class FlatParameters : IDisposable
{
    private readonly List<ParameterSlice> _layout = [];

    public FlatParameters(nn.Module model, ulong initSeed)
    {
        var parameters = model.named_parameters().ToList();
        long total = parameters.Sum(p => p.parameter.numel());
        if (total > int.MaxValue) throw new ArgumentException("Models over 2^31 parameters are not supported.", nameof(model));
        Count = (int)total;
        Weights = zeros(total, ScalarType.Float32).DetachFromDisposeScope();
        Gradients = zeros(total, ScalarType.Float32).DetachFromDisposeScope();

        var initValues = new float[total];
        FillDefaultInitialisation(parameters.Select(p => p.parameter.shape).ToList(), initValues, initSeed);
        initValues.AsSpan().CopyTo(WeightSpan);

        long offset = 0;
        using (no_grad())
        {
            foreach (var (name, parameter) in parameters)
            {
                long length = parameter.numel();
                var shape = parameter.shape;
                using var weightView = Weights.narrow(0, offset, length).view(shape);
                parameter.set_(weightView);
                parameter.grad = Gradients.narrow(0, offset, length).view(shape).DetachFromDisposeScope();
                _layout.Add(new ParameterSlice(name, offset, shape));
                offset += length;
            }
        }
    }

    public int Count { get; }

    public long ByteCount => Count * (long)sizeof(float);

    public Tensor Weights { get; }

    public Tensor Gradients { get; }

    public IReadOnlyList<ParameterSlice> Layout => _layout;

    public Span<float> WeightSpan => FlatOptimizer.Span(Weights);

    public Span<float> GradientSpan => FlatOptimizer.Span(Gradients);

    public void ZeroGradients() => Gradients.zero_();

    public void ExportGradients(Span<float> destination) => GradientSpan.CopyTo(destination);

    public void ImportGradients(ReadOnlySpan<float> source)
    {
        if (source.Length != Count) throw new ArgumentException($"Gradient has {source.Length} values; the model has {Count}.", nameof(source));
        source.CopyTo(GradientSpan);
    }

    public void ExportWeights(Span<float> destination) => WeightSpan.CopyTo(destination);

    public void ImportWeights(ReadOnlySpan<float> source)
    {
        if (source.Length != Count) throw new ArgumentException($"Weights have {source.Length} values; the model has {Count}.", nameof(source));
        source.CopyTo(WeightSpan);
    }

    /// <summary>PyTorch's default for Linear and Conv: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases.</summary>
    private static void FillDefaultInitialisation(IReadOnlyList<long[]> shapes, Span<float> values, ulong seed)
    {
        var random = SplitMix64.Derive(seed, "init");
        long offset = 0;
        long lastFanIn = 1;
        foreach (var shape in shapes)
        {
            long length = shape.Aggregate(1L, (a, b) => a * b);
            long fanIn = shape.Length >= 2 ? shape.Skip(1).Aggregate(1L, (a, b) => a * b) : lastFanIn;
            if (shape.Length >= 2) lastFanIn = fanIn;
            float bound = (float)(1.0 / Math.Sqrt(fanIn));
            var slice = values.Slice((int)offset, (int)length);
            for (int i = 0; i < slice.Length; i++) slice[i] = (random.NextSingle() * 2f - 1f) * bound;
            offset += length;
        }
    }

    public void Dispose()
    {
        Weights.Dispose();
        Gradients.Dispose();
    }
}
