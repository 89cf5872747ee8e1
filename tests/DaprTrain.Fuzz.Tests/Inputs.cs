using System.Buffers.Binary;
using System.Text;
using CsCheck;
using DaprTrain.Fuzz;

namespace DaprTrain.Fuzz.Tests;

/// <summary>One edit of a valid encoding. <see cref="Op"/> picks the edit, <see cref="Position"/> and <see cref="Value"/> its operands.</summary>
public readonly record struct Mutation(int Op, uint Position, uint Value);

/// <summary>Input generators: random bytes, and valid encodings (the fuzz targets' seeds) edited the way a fuzzer would.</summary>
public static class Inputs
{
    /// <summary>Values that break length and count arithmetic: signs, powers of two, the edges of int, a quarter of int.MaxValue.</summary>
    private static readonly int[] Interesting = [0, 1, -1, 2, 7, 8, 255, 256, 0xFFFF, 0x10000, 0x3FFFFFFF, 0x40000000, int.MaxValue / 4 + 1, int.MaxValue - 1, int.MaxValue, int.MinValue];

    /// <summary>Tokens that text parsers (JSON, the fault grammar) trip on.</summary>
    private static readonly string[] Tokens =
    [
        "NaN", "Infinity", "-1", "1e400", "-0", "0.", "1e-400", "99999999999999999999", "null", "true", "\"\"", "[", "]", "{", "}", ",", ":", "\"", "\\u0000",
        "worker-99999999999", "worker-0", "ps", "@round=", "@round=0", "=", "ms", "s", "@p=", "kill:", "slow:", "restart:", "drop=", "delay=", "coldstart=", "\n", "#", "name:",
        "[[]]", "{\"images\":[]}", "\"platforms\"", "\"memoryMb\":", "\"vmPerHour\":", "\uFEFF", "\u00e9", "\xff",
    ];

    public static Gen<byte[]> RandomBytes(int maxLength) => Gen.Byte.Array[0, maxLength];

    public static Gen<Mutation> MutationGen { get; } = Gen.Select(Gen.Int[0, 8], Gen.UInt, Gen.UInt, (op, position, value) => new Mutation(op, position, value));

    /// <summary>A seed of <paramref name="target"/> with one to <paramref name="maxEdits"/> edits.</summary>
    public static Gen<byte[]> Mutants(FuzzTarget target, int maxEdits = 6)
    {
        var seeds = target.Seeds().Select(s => s.Bytes).ToArray();
        return Gen.Select(Gen.Int[0, seeds.Length - 1], MutationGen.Array[1, maxEdits], (seed, edits) => Apply(seeds[seed], edits));
    }

    public static byte[] Apply(byte[] seed, Mutation[] edits)
    {
        var bytes = new List<byte>(seed);
        foreach (var edit in edits)
        {
            int at = bytes.Count == 0 ? 0 : (int)(edit.Position % (uint)bytes.Count);
            switch (edit.Op)
            {
                case 0 when bytes.Count > 0: // flip a bit
                    bytes[at] ^= (byte)(1 << (int)(edit.Value % 8));
                    break;
                case 1 when bytes.Count > 0: // a random byte
                    bytes[at] = (byte)edit.Value;
                    break;
                case 2 or 3: // an interesting 32-bit value, little-endian (2) or big-endian (3), over what is there
                {
                    Span<byte> value = stackalloc byte[4];
                    int v = Interesting[edit.Value % (uint)Interesting.Length];
                    if (edit.Op == 2) BinaryPrimitives.WriteInt32LittleEndian(value, v);
                    else BinaryPrimitives.WriteInt32BigEndian(value, v);
                    for (int i = 0; i < 4; i++)
                    {
                        if (at + i < bytes.Count) bytes[at + i] = value[i];
                        else bytes.Add(value[i]);
                    }
                    break;
                }
                case 4: // insert random bytes
                    bytes.InsertRange(at, Enumerable.Range(0, (int)(edit.Value % 16) + 1).Select(i => (byte)(edit.Value >> (i % 4 * 8))));
                    break;
                case 5 when bytes.Count > 0: // delete a run
                    bytes.RemoveRange(at, Math.Min(bytes.Count - at, (int)(edit.Value % 32) + 1));
                    break;
                case 6: // truncate
                    bytes.RemoveRange(at, bytes.Count - at);
                    break;
                case 7 when bytes.Count > 0: // duplicate a run
                    bytes.InsertRange(at, bytes.GetRange(at, Math.Min(bytes.Count - at, (int)(edit.Value % 64) + 1)));
                    break;
                case 8: // a token of the text formats
                    bytes.InsertRange(at, Encoding.UTF8.GetBytes(Tokens[edit.Value % (uint)Tokens.Length]));
                    break;
            }
        }
        return [.. bytes];
    }
}
