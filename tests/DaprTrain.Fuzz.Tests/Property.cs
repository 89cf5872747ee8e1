using CsCheck;
using DaprTrain.Fuzz;

namespace DaprTrain.Fuzz.Tests;

/// <summary>
/// A deterministic property run: <c>iterations</c> inputs drawn from a CsCheck generator with a fixed PCG seed (the same
/// inputs on every run and machine), each run through a fuzz target (<see cref="FuzzTargets.Execute"/>: documented
/// exception or acceptance only, allocation within the target's bound). A failure names the iteration and the input.
/// </summary>
public static class Property
{
    public sealed record Tally(int Accepted, int Rejected, int KnownFindings);

    public static Tally Run(FuzzTarget target, Gen<byte[]> inputs, int iterations, ulong seed, Func<byte[], bool>? knownFinding = null)
    {
        var pcg = new PCG(1, seed);
        int accepted = 0, rejected = 0, known = 0;
        for (int i = 0; i < iterations; i++)
        {
            var input = inputs.Generate(pcg, null!, out _);
            if (knownFinding?.Invoke(input) == true)
            {
                known++;
                continue;
            }
            try
            {
                if (FuzzTargets.Execute(target, input) == FuzzOutcome.Accepted) accepted++;
                else rejected++;
            }
            catch (FuzzFindingException ex)
            {
                throw new Xunit.Sdk.XunitException(
                    $"{ex.Message}\n(iteration {i} of seed {seed}; input of {input.Length} bytes, hex: {Convert.ToHexString(input.AsSpan(0, Math.Min(input.Length, 2048)))})\n{ex.InnerException}");
            }
        }
        return new Tally(accepted, rejected, known);
    }

    /// <summary><paramref name="iterations"/> values of <paramref name="gen"/> from a fixed seed (CsCheck's Sample reseeds after its first iteration).</summary>
    public static void ForAll<T>(Gen<T> gen, int iterations, ulong seed, Action<T> check)
    {
        var pcg = new PCG(2, seed);
        for (int i = 0; i < iterations; i++)
        {
            var value = gen.Generate(pcg, null!, out _);
            try
            {
                check(value);
            }
            catch (Exception ex)
            {
                throw new Xunit.Sdk.XunitException($"iteration {i} of seed {seed}: {value}\n{ex.Message}", ex);
            }
        }
    }

    /// <summary>Bytes allocated on this thread by <paramref name="action"/>.</summary>
    public static long Allocated(Action action)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        action();
        return GC.GetAllocatedBytesForCurrentThread() - before;
    }
}
