using System.Globalization;
using System.Text.RegularExpressions;
using DaprTrain.Engine.Aggregation;
using DaprTrain.Engine.Messaging;
using DaprTrain.Simulation.Messaging;

namespace DaprTrain.Simulation.Faults;

public enum NodeFaultKind
{
    Kill,
    Restart,
    Slow,
}

/// <summary>A fault aimed at one node: killed or restarted when round <see cref="Round"/> starts, or slowed from that round on.</summary>
public sealed record NodeFault(NodeFaultKind Kind, string Node, long Round, double DelayMs = 0)
{
    public override string ToString() => Kind switch
    {
        NodeFaultKind.Slow => $"slow:{Node}={DelayMs.ToString(CultureInfo.InvariantCulture)}ms" + (Round > 1 ? $"@round={Round}" : ""),
        _ => $"{Kind.ToString().ToLowerInvariant()}:{Node}@round={Round}",
    };
}

/// <summary>A Byzantine worker of the experiment: it runs <see cref="Attack"/> on every gradient it sends from the attack's round on.</summary>
public sealed record ByzantineFault(string Node, GradientAttack Attack)
{
    public override string ToString() => $"byzantine:{Node}={Attack}";
}

/// <summary>A fault item or plan that is wrong; <see cref="InFile"/> when it came from a scenario file (bad input, not a bad option).</summary>
public sealed class FaultSpecException(string message, bool inFile = false) : Exception(message)
{
    public bool InFile { get; } = inFile;
}

/// <summary>The faults of one run, from --fault items or a scenario file, in one grammar.</summary>
/// <summary>Faults of serverless gradient functions (--compute serverless): crashes and timeouts drawn per invocation, a cold-start override.</summary>
public sealed record FunctionFaults(double CrashProbability = 0, double TimeoutProbability = 0, double? ColdStartMs = null)
{
    public static FunctionFaults None { get; } = new();

    public bool Any => CrashProbability > 0 || TimeoutProbability > 0 || ColdStartMs is not null;
}

public sealed partial record FaultPlan(string Name, IReadOnlyList<NodeFault> NodeFaults, BusFaults Bus, FunctionFaults Functions, IReadOnlyList<ByzantineFault>? Byzantine = null)
{
    /// <summary>The Byzantine workers of the plan (none unless it has byzantine: items).</summary>
    public IReadOnlyList<ByzantineFault> Attacks => Byzantine ?? [];

    /// <summary>The attack worker <paramref name="node"/> runs, if it is Byzantine.</summary>
    public GradientAttack? AttackOf(string node) => Attacks.FirstOrDefault(a => a.Node == node)?.Attack;

    public const string Grammar =
        "fault grammar (repeat --fault, or one item per line in a scenario file):\n" +
        "  kill:worker-N@round=R       stop worker N when round R starts\n" +
        "  kill:ps@round=R             stop the parameter server (ps topology); it is restarted from its checkpoint\n" +
        "  restart:worker-N@round=R    start a killed worker again; it loads the latest state and rejoins\n" +
        "  slow:worker-N=D[ms|s][@round=R]  add D to worker N's compute time (from round R)\n" +
        "  drop=P                      lose a fraction P of deliveries (the broker redelivers them later)\n" +
        "  duplicate=P                 deliver a fraction P of messages twice\n" +
        "  delay=P:D[ms|s]             deliver a fraction P of messages D later\n" +
        "  reorder                     deliver messages due close together in random order\n" +
        "  fail:function@p=P           (--compute serverless) a gradient-function invocation crashes with probability P; it is retried\n" +
        "  timeout:function@p=P        an invocation hangs until the platform's timeout with probability P; it is retried\n" +
        "  coldstart=D[ms|s]           a function instance's cold start takes D (instead of the platform profile's)\n" +
        "  byzantine:worker-N=ATTACK[@round=R]  worker N sends a bent gradient (from round R): signflip[:S] (-S x its gradient, S 10),\n" +
        "                              gaussian[:sigma] (noise instead, sigma 100), noise[:sigma] (noise added, sigma 1), labelflip\n" +
        "                              (trains on labels 9 - y), alie[:z] (mean - z x std of the honest gradients; z from n and f), zero\n" +
        "durations: at most 1h (3600s); fractions: 0 to 1\n" +
        "examples: --fault kill:worker-2@round=30 --fault slow:worker-1=200ms --fault drop=0.05";

    /// <summary>The longest duration a fault item may name (slow, delay, coldstart): an hour.</summary>
    public const double MaxDurationMs = 3_600_000;

    /// <summary>The longest line a scenario file may have.</summary>
    public const int MaxLineLength = 1000;

    public static FaultPlan None { get; } = new("none", [], BusFaults.None, FunctionFaults.None);

    public bool IsEmpty => NodeFaults.Count == 0 && !Bus.Any && !Functions.Any && Attacks.Count == 0;

    public static FaultPlan Parse(IEnumerable<string> items, string? name = null)
    {
        var nodeFaults = new List<NodeFault>();
        var bus = BusFaults.None;
        var functions = FunctionFaults.None;
        var attacks = new List<ByzantineFault>();
        var list = items.ToList();
        foreach (string raw in list)
        {
            string item = raw.Trim();
            try
            {
                var byzantine = ByzantinePattern().Match(item);
                if (byzantine.Success) attacks.Add(ParseByzantine(byzantine));
                else bus = ParseItem(item, nodeFaults, bus, ref functions);
            }
            catch (FaultSpecException ex)
            {
                throw new FaultSpecException($"invalid fault '{BoundedFile.Printable(item)}': {ex.Message}\n{Grammar}");
            }
        }
        return new FaultPlan(name ?? (list.Count == 0 ? "none" : string.Join(" ", list.Select(i => i.Trim()))), nodeFaults, bus, functions, attacks);
    }

    /// <summary>A scenario file: one fault item a line, '#' comments, and an optional 'name: ...' line.</summary>
    public static FaultPlan ParseFile(string path)
    {
        if (!File.Exists(path) && !Directory.Exists(path)) throw new FaultSpecException($"scenario file '{path}' does not exist", inFile: true);
        string? name = null;
        var items = new List<string>();
        string text;
        try
        {
            text = BoundedFile.ReadAllText(path, "scenario file");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidDataException)
        {
            throw new FaultSpecException(ex.Message.Contains(path, StringComparison.Ordinal) ? ex.Message : $"scenario file '{path}': {ex.Message}", inFile: true);
        }
        var lines = text.Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            string line = lines[i].TrimEnd('\r');
            if (line.Length > MaxLineLength) throw new FaultSpecException($"{path}, line {i + 1}: longer than {MaxLineLength} characters", inFile: true);
            int hash = line.IndexOf('#', StringComparison.Ordinal);
            if (hash >= 0) line = line[..hash];
            line = line.Trim();
            if (line.Length == 0) continue;
            if (line.StartsWith("name:", StringComparison.OrdinalIgnoreCase))
            {
                name = line[5..].Trim();
                continue;
            }
            try
            {
                Parse([line]);
            }
            catch (FaultSpecException ex)
            {
                throw new FaultSpecException($"{path}, line {i + 1}: {ex.Message}", inFile: true);
            }
            items.Add(line);
        }
        return Parse(items, name ?? Path.GetFileNameWithoutExtension(path));
    }

    /// <summary>Checks the plan against a job: nodes that exist, ps faults only with a parameter server, restarts after kills.</summary>
    public void Validate(int workers, bool hasParameterServer, long rounds, bool serverless = false)
    {
        if (Functions.Any && !serverless) throw new FaultSpecException("function faults (fail:function, timeout:function, coldstart) need --compute serverless");
        foreach (var fault in NodeFaults)
        {
            if (fault.Node == "ps")
            {
                if (!hasParameterServer) throw new FaultSpecException($"{fault}: this topology has no parameter server");
                if (fault.Kind != NodeFaultKind.Kill) throw new FaultSpecException($"{fault}: only kill applies to the parameter server (it is restarted by itself)");
            }
            else
            {
                // A number past int's range is a worker no job has (the pattern only asks for digits).
                if (!int.TryParse(fault.Node.AsSpan(7), NumberStyles.None, CultureInfo.InvariantCulture, out int n) || n > workers) throw new FaultSpecException($"{fault}: the job has {workers} workers (worker-1 to worker-{workers})");
            }
            if (fault.Round > rounds) throw new FaultSpecException($"{fault}: the run has only {rounds} rounds");
            if (fault.Kind == NodeFaultKind.Restart && !NodeFaults.Any(k => k.Kind == NodeFaultKind.Kill && k.Node == fault.Node && k.Round < fault.Round))
            {
                throw new FaultSpecException($"{fault}: a restart needs an earlier kill of {fault.Node}");
            }
        }
        foreach (var attack in Attacks)
        {
            if (!int.TryParse(attack.Node.AsSpan(7), NumberStyles.None, CultureInfo.InvariantCulture, out int n) || n > workers) throw new FaultSpecException($"{attack}: the job has {workers} workers (worker-1 to worker-{workers})");
            if (attack.Attack.FromRound > rounds) throw new FaultSpecException($"{attack}: the run has only {rounds} rounds");
            if (Attacks.Count(a => a.Node == attack.Node) > 1) throw new FaultSpecException($"{attack}: {attack.Node} has more than one attack; give it one");
        }
        if (Attacks.Count >= workers) throw new FaultSpecException($"{Attacks.Count} Byzantine workers of {workers}: at least one worker must be honest");
        ValidateLifecycles();
        if (NodeFaults.Where(f => f.Kind == NodeFaultKind.Kill && f.Node != "ps").Select(f => f.Node).Distinct().Count() >= workers)
        {
            throw new FaultSpecException("the plan kills every worker; at least one must survive");
        }
    }

    /// <summary>
    /// Follows every worker through the plan, round by round (within a round in the plan's order, as they fire): a kill needs a running worker, a restart a dead one.
    /// (The parameter server restarts by itself, so only two kills of it in one round are refused.)
    /// </summary>
    private void ValidateLifecycles()
    {
        var dead = new Dictionary<string, NodeFault>(StringComparer.Ordinal);
        var lifecycle = NodeFaults.Where(f => f.Kind != NodeFaultKind.Slow).Select((f, i) => (Fault: f, Index: i))
            .OrderBy(p => p.Fault.Round).ThenBy(p => p.Index).Select(p => p.Fault);
        var serverKills = new HashSet<long>();
        foreach (var fault in lifecycle)
        {
            if (fault.Node == "ps")
            {
                if (!serverKills.Add(fault.Round)) throw new FaultSpecException($"{fault}: the parameter server is killed twice in round {fault.Round}");
                continue;
            }
            if (fault.Kind == NodeFaultKind.Kill)
            {
                if (dead.TryGetValue(fault.Node, out var killed))
                {
                    throw new FaultSpecException($"{fault}: {fault.Node} is not running at round {fault.Round} (killed at round {killed.Round} and not restarted since)");
                }
                dead[fault.Node] = fault;
            }
            else
            {
                if (!dead.Remove(fault.Node))
                {
                    throw new FaultSpecException(NodeFaults.Any(k => k.Kind == NodeFaultKind.Kill && k.Node == fault.Node && k.Round < fault.Round)
                        ? $"{fault}: {fault.Node} is already running at round {fault.Round} (restarted since its last kill)"
                        : $"{fault}: a restart needs an earlier kill of {fault.Node}");
                }
            }
        }
    }

    private static BusFaults ParseItem(string item, List<NodeFault> nodeFaults, BusFaults bus, ref FunctionFaults functions)
    {
        if (item == "reorder") return bus with { Reorder = true };
        var function = FunctionFaultPattern().Match(item);
        if (function.Success)
        {
            double p = ParseProbability(function.Groups["p"].Value);
            functions = function.Groups["kind"].Value == "fail" ? functions with { CrashProbability = p } : functions with { TimeoutProbability = p };
            return bus;
        }
        if (item.StartsWith("coldstart=", StringComparison.Ordinal))
        {
            functions = functions with { ColdStartMs = ParseDuration(item["coldstart=".Length..]) };
            return bus;
        }
        var node = NodeFaultPattern().Match(item);
        if (node.Success)
        {
            var kind = node.Groups["kind"].Value switch
            {
                "kill" => NodeFaultKind.Kill,
                "restart" => NodeFaultKind.Restart,
                _ => NodeFaultKind.Slow,
            };
            string target = node.Groups["node"].Value;
            long round = node.Groups["round"].Success ? ParseRound(node.Groups["round"].Value) : 1;
            if (kind == NodeFaultKind.Slow)
            {
                if (!node.Groups["delay"].Success) throw new FaultSpecException("slow needs a delay, as in slow:worker-1=200ms");
                if (target == "ps") throw new FaultSpecException("slow applies to workers");
                nodeFaults.Add(new NodeFault(kind, target, round, ParseDuration(node.Groups["delay"].Value)));
            }
            else
            {
                if (node.Groups["delay"].Success) throw new FaultSpecException($"{node.Groups["kind"].Value} takes no duration");
                if (!node.Groups["round"].Success) throw new FaultSpecException($"{node.Groups["kind"].Value} needs a round, as in {node.Groups["kind"].Value}:{target}@round=30");
                nodeFaults.Add(new NodeFault(kind, target, round));
            }
            return bus;
        }
        var setting = BusFaultPattern().Match(item);
        if (!setting.Success) throw new FaultSpecException("not a fault item");
        string value = setting.Groups["value"].Value;
        return setting.Groups["name"].Value switch
        {
            "drop" => bus with { DropProbability = ParseProbability(value) },
            "duplicate" => bus with { DuplicateProbability = ParseProbability(value) },
            _ => ParseDelay(value, bus),
        };
    }

    private static BusFaults ParseDelay(string value, BusFaults bus)
    {
        var parts = value.Split(':');
        if (parts.Length != 2) throw new FaultSpecException("delay needs a fraction and a duration, as in delay=0.1:50ms");
        return bus with { DelayProbability = ParseProbability(parts[0]), DelayMs = ParseDuration(parts[1]) };
    }

    private static double ParseProbability(string text)
    {
        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double p) || !(p >= 0 && p <= 1))
        {
            throw new FaultSpecException($"'{text}' is not a fraction between 0 and 1");
        }
        return p;
    }

    private static long ParseRound(string text)
    {
        if (!long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out long round) || round < 1)
        {
            throw new FaultSpecException($"round '{text}' must be a whole number of at least 1");
        }
        return round;
    }

    private static double ParseDuration(string text)
    {
        var match = DurationPattern().Match(text);
        if (!match.Success) throw new FaultSpecException($"'{text}' is not a duration such as 200ms or 1.5s");
        double value = double.Parse(match.Groups["value"].Value, CultureInfo.InvariantCulture);
        double ms = match.Groups["unit"].Value == "s" ? value * 1000 : value;
        if (!(ms <= MaxDurationMs)) throw new FaultSpecException($"'{text}' is longer than the longest fault duration, 1h (3600s)");
        return ms;
    }

    [GeneratedRegex(@"^(?<kind>kill|restart|slow):(?<node>worker-[1-9][0-9]*|ps)(=(?<delay>[^@]+))?(@round=(?<round>[^@]+))?$")]
    private static partial Regex NodeFaultPattern();

    private static ByzantineFault ParseByzantine(Match match)
    {
        string node = match.Groups["node"].Value;
        if (!WorkerPattern().IsMatch(node)) throw new FaultSpecException($"byzantine applies to workers (worker-1, worker-2, ...), not '{BoundedFile.Printable(node)}'");
        if (!match.Groups["attack"].Success) throw new FaultSpecException($"byzantine needs an attack, as in byzantine:{node}=signflip; attacks: {GradientAttack.Grammar}");
        try
        {
            return new ByzantineFault(node, GradientAttack.Parse(match.Groups["attack"].Value));
        }
        catch (ArgumentException ex)
        {
            throw new FaultSpecException(ex.Message);
        }
    }

    [GeneratedRegex(@"^byzantine:(?<node>[^=]*)(=(?<attack>.*))?$")]
    private static partial Regex ByzantinePattern();

    [GeneratedRegex(@"^worker-[1-9][0-9]*$")]
    private static partial Regex WorkerPattern();

    [GeneratedRegex(@"^(?<kind>fail|timeout):function@p=(?<p>.+)$")]
    private static partial Regex FunctionFaultPattern();

    [GeneratedRegex(@"^(?<name>drop|duplicate|delay)=(?<value>.+)$")]
    private static partial Regex BusFaultPattern();

    [GeneratedRegex(@"^(?<value>[0-9]+(\.[0-9]+)?)(?<unit>ms|s)$")]
    private static partial Regex DurationPattern();
}
