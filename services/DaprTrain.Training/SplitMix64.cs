namespace DaprTrain.Training;

/// <summary>
/// A tiny, fully specified PRNG. Everything random in training (initialisation, shuffling, synthetic
/// data) draws from one of these rather than from torch's process-wide generator, so that parallel
/// trainers (and parallel tests) cannot disturb each other's sequences.
/// </summary>
public struct SplitMix64
{
    private ulong _state;

    public SplitMix64(ulong seed) => _state = seed;

    public ulong State => _state;

    public static SplitMix64 Derive(ulong seed, string purpose, long index = 0)
    {
        ulong h = seed ^ 0x9E3779B97F4A7C15UL;
        foreach (char c in purpose) h = Mix(h ^ c);
        return new SplitMix64(Mix(h ^ (ulong)index));
    }

    public ulong NextUInt64()
    {
        _state += 0x9E3779B97F4A7C15UL;
        return Mix(_state);
    }

    /// <summary>Uniform in [0, 1) with 24 random bits, exactly representable as float.</summary>
    public float NextSingle() => (NextUInt64() >> 40) * (1.0f / (1 << 24));

    public int NextInt(int exclusiveMax)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(exclusiveMax);
        return (int)((NextUInt64() >> 33) % (ulong)exclusiveMax);
    }

    /// <summary>Standard normal by Box-Muller; deterministic because it is ours.</summary>
    public float NextGaussian()
    {
        double u1 = 1.0 - (NextUInt64() >> 11) * (1.0 / (1UL << 53));
        double u2 = (NextUInt64() >> 11) * (1.0 / (1UL << 53));
        return (float)(Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2));
    }

    public void Shuffle<T>(Span<T> items)
    {
        for (int i = items.Length - 1; i > 0; i--)
        {
            int j = NextInt(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }

    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
