using System.Collections.Concurrent;
using System.Numerics;
using System.Reflection;
using System.Reflection.Emit;

namespace DaprTrain.Engine.Aggregation;

/// <summary>
/// Reduces <paramref name="length"/> coordinates (a multiple of <c>Vector&lt;float&gt;.Count</c>) of n sources into
/// <paramref name="target"/>, one vector of coordinates at a time.
/// </summary>
internal unsafe delegate void CoordinateKernel(float** sources, float* target, int length);

/// <summary>
/// The coordinate-wise median and trimmed mean as straight-line code made for each n: the n values of a vector of
/// coordinates are loaded into n locals, the sorting network's comparators become a min and a max of two locals each, and
/// the reduction reads the locals the rule needs.
/// <para>
/// Why generated code: a network interpreted from a table keeps its n vectors in memory, and every comparator loads its
/// two indices and two vectors and stores two vectors back (about eight instructions for two that do the work). With the
/// network unrolled over locals the JIT keeps the values in registers (32 vector registers with AVX-512, 16 with AVX2,
/// spilling the rest), so a comparator costs its min and max. C# has no way to unroll over a count known only at run time,
/// so the method is emitted as IL for each (n, rule, f) a job uses and compiled once by the JIT like any other method.
/// </para>
/// <para>
/// Min and max are exact and the network sorts, so each coordinate's sorted values, and therefore the median, do not depend
/// on the network; the trimmed mean adds the sorted values in ascending position, so its bits are fixed too. The code
/// performs the operations of the interpreted network it replaced in the same order, so replicas built before and after
/// agree; <c>AggregatorTests</c> checks every n against a scalar reference that sorts each coordinate.
/// </para>
/// </summary>
internal static class CoordinateKernels
{
    /// <summary>What a kernel computes from the sorted values of a coordinate.</summary>
    internal enum Rule
    {
        /// <summary>The middle value, or the mean of the middle two: <c>(a + b) * 0.5</c>.</summary>
        Median,

        /// <summary>The sum of the sorted values f .. n-f-1, from zero upwards, divided by n - 2f.</summary>
        Trimmed,
    }

    // At most MaxContributions x (MaxContributions / 2 + 1) x 2 entries: bounded whatever rules a process runs.
    private static readonly ConcurrentDictionary<(int N, Rule Rule, int F), CoordinateKernel> Cache = new();

    private static readonly MethodInfo Load = GenericVectorMethod(nameof(Vector.Load), 1).MakeGenericMethod(typeof(float));
    private static readonly MethodInfo Store = GenericVectorMethod(nameof(Vector.Store), 2).MakeGenericMethod(typeof(float));
    private static readonly MethodInfo Min = GenericVectorMethod(nameof(Vector.MinNative), 2).MakeGenericMethod(typeof(float));
    private static readonly MethodInfo Max = GenericVectorMethod(nameof(Vector.MaxNative), 2).MakeGenericMethod(typeof(float));
    private static readonly MethodInfo Zero = typeof(Vector<float>).GetProperty(nameof(Vector<float>.Zero))!.GetMethod!;
    private static readonly MethodInfo Add = Operator("op_Addition");
    private static readonly MethodInfo Multiply = Operator("op_Multiply");
    private static readonly MethodInfo Divide = Operator("op_Division");
    private static readonly ConstructorInfo Broadcast = typeof(Vector<float>).GetConstructor([typeof(float)])!;

    /// <summary>The kernel for <paramref name="n"/> sources under <paramref name="rule"/> (f = <paramref name="f"/> for the trimmed mean), made on first use.</summary>
    public static CoordinateKernel For(int n, Rule rule, int f)
    {
        if (n < 1 || n > AggregationRule.MaxContributions) throw new ArgumentOutOfRangeException(nameof(n), n, $"a kernel is made for 1 to {AggregationRule.MaxContributions} sources");
        if (rule == Rule.Median) f = 0;
        else if (f < 0 || 2 * f >= n) throw new ArgumentOutOfRangeException(nameof(f), f, $"trimmed-mean needs 2f < n (n = {n})");
        return Cache.GetOrAdd((n, rule, f), static key => Emit(key.N, key.Rule, key.F));
    }

    private static unsafe CoordinateKernel Emit(int n, Rule rule, int f)
    {
        var network = SortingNetworks.For(n);
        var method = new DynamicMethod($"CoordinateWise_{rule}_{n}_{f}", typeof(void), [typeof(float**), typeof(float*), typeof(int)], typeof(CoordinateKernels).Module, skipVisibility: false);
        var il = method.GetILGenerator();
        var pointers = new LocalBuilder[n];
        var values = new LocalBuilder[n];
        for (int c = 0; c < n; c++)
        {
            pointers[c] = il.DeclareLocal(typeof(float*));
            values[c] = il.DeclareLocal(typeof(Vector<float>));
        }
        var low = il.DeclareLocal(typeof(Vector<float>));
        var i = il.DeclareLocal(typeof(int));
        int width = Vector<float>.Count;

        // pointers[c] = sources[c]
        for (int c = 0; c < n; c++)
        {
            il.Emit(OpCodes.Ldarg_0);
            il.Emit(OpCodes.Ldc_I4, c * sizeof(float*));
            il.Emit(OpCodes.Add);
            il.Emit(OpCodes.Ldind_I);
            il.Emit(OpCodes.Stloc, pointers[c]);
        }
        var body = il.DefineLabel();
        var check = il.DefineLabel();
        il.Emit(OpCodes.Ldc_I4_0);
        il.Emit(OpCodes.Stloc, i);
        il.Emit(OpCodes.Br, check);

        il.MarkLabel(body);
        // values[c] = Vector.Load(pointers[c] + i) + Vector<float>.Zero   (-0 becomes +0; see RobustAggregator.Canonical)
        for (int c = 0; c < n; c++)
        {
            il.Emit(OpCodes.Ldloc, pointers[c]);
            EmitByteOffset(il, i);
            il.Emit(OpCodes.Add);
            il.Emit(OpCodes.Call, Load);
            il.Emit(OpCodes.Call, Zero);
            il.Emit(OpCodes.Call, Add);
            il.Emit(OpCodes.Stloc, values[c]);
        }
        // Each comparator: low = min(a, b); b = max(a, b); a = low.
        for (int p = 0; p < network.Length; p += 2)
        {
            var a = values[network[p]];
            var b = values[network[p + 1]];
            il.Emit(OpCodes.Ldloc, a);
            il.Emit(OpCodes.Ldloc, b);
            il.Emit(OpCodes.Call, Min);
            il.Emit(OpCodes.Stloc, low);
            il.Emit(OpCodes.Ldloc, a);
            il.Emit(OpCodes.Ldloc, b);
            il.Emit(OpCodes.Call, Max);
            il.Emit(OpCodes.Stloc, b);
            il.Emit(OpCodes.Ldloc, low);
            il.Emit(OpCodes.Stloc, a);
        }
        EmitReduction(il, values, rule, f);
        // Vector.Store(result, target + i)
        il.Emit(OpCodes.Ldarg_1);
        EmitByteOffset(il, i);
        il.Emit(OpCodes.Add);
        il.Emit(OpCodes.Call, Store);
        // i += width
        il.Emit(OpCodes.Ldloc, i);
        il.Emit(OpCodes.Ldc_I4, width);
        il.Emit(OpCodes.Add);
        il.Emit(OpCodes.Stloc, i);

        il.MarkLabel(check);
        // while (i <= length - width)
        il.Emit(OpCodes.Ldloc, i);
        il.Emit(OpCodes.Ldarg_2);
        il.Emit(OpCodes.Ldc_I4, width);
        il.Emit(OpCodes.Sub);
        il.Emit(OpCodes.Ble, body);
        il.Emit(OpCodes.Ret);
        return method.CreateDelegate<CoordinateKernel>();
    }

    /// <summary>Leaves the rule's vector on the stack.</summary>
    private static void EmitReduction(ILGenerator il, LocalBuilder[] values, Rule rule, int f)
    {
        int n = values.Length;
        if (rule == Rule.Median)
        {
            if ((n & 1) == 1)
            {
                il.Emit(OpCodes.Ldloc, values[n / 2]);
                return;
            }
            // (values[n/2 - 1] + values[n/2]) * new Vector<float>(0.5f)
            il.Emit(OpCodes.Ldloc, values[n / 2 - 1]);
            il.Emit(OpCodes.Ldloc, values[n / 2]);
            il.Emit(OpCodes.Call, Add);
            il.Emit(OpCodes.Ldc_R4, 0.5f);
            il.Emit(OpCodes.Newobj, Broadcast);
            il.Emit(OpCodes.Call, Multiply);
            return;
        }
        // sum = Zero; sum += values[c] for c in f .. n-f-1; sum / new Vector<float>(n - 2f)
        il.Emit(OpCodes.Call, Zero);
        for (int c = f; c < n - f; c++)
        {
            il.Emit(OpCodes.Ldloc, values[c]);
            il.Emit(OpCodes.Call, Add);
        }
        il.Emit(OpCodes.Ldc_R4, (float)(n - 2 * f));
        il.Emit(OpCodes.Newobj, Broadcast);
        il.Emit(OpCodes.Call, Divide);
    }

    /// <summary>Pushes (native int)i * sizeof(float).</summary>
    private static void EmitByteOffset(ILGenerator il, LocalBuilder i)
    {
        il.Emit(OpCodes.Ldloc, i);
        il.Emit(OpCodes.Conv_I);
        il.Emit(OpCodes.Ldc_I4_4);
        il.Emit(OpCodes.Mul);
    }

    private static MethodInfo GenericVectorMethod(string name, int parameters) =>
        typeof(Vector).GetMethods(BindingFlags.Public | BindingFlags.Static)
            .Single(m => m.Name == name && m.IsGenericMethodDefinition && m.GetParameters().Length == parameters
                && (name != nameof(Vector.Load) || m.GetParameters()[0].ParameterType.IsPointer)
                && (name != nameof(Vector.Store) || m.GetParameters()[1].ParameterType.IsPointer));

    private static MethodInfo Operator(string name) =>
        typeof(Vector<float>).GetMethod(name, BindingFlags.Public | BindingFlags.Static, [typeof(Vector<float>), typeof(Vector<float>)])
        ?? throw new InvalidOperationException($"Vector<float>.{name}(Vector<float>, Vector<float>) not found");
}
