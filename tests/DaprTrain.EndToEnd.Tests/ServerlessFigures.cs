using System.Diagnostics;
using System.Text;
using System.Text.Json;

namespace DaprTrain.EndToEnd.Tests;

/// <summary>A fact that measures figures for BENCHMARKS.md: run only with DAPRTRAIN_FIGURES=1 (minutes of machine time, and it prints rather than gates).</summary>
public sealed class FiguresFactAttribute : FactAttribute
{
    public FiguresFactAttribute()
    {
        if (Environment.GetEnvironmentVariable("DAPRTRAIN_FIGURES") != "1") Skip = "figures for BENCHMARKS.md: set DAPRTRAIN_FIGURES=1 to measure them";
    }
}

/// <summary>
/// Issue 10's figures: a worker's round time computing locally, and fanning out to 1, 2 and 4 gradient-function
/// processes through the sidecar double (one share per process); and the overhead of one invocation (the request with
/// the weights, the gradient back, both checked) over the function's own compute. Every process shares this machine's
/// cores. Each configuration must still train: every share served by a function, none computed locally.
/// </summary>
[Trait("Category", "Figures")]
public sealed class ServerlessFigures
{
    private const int Rounds = 45;
    private const int From = 10;

    [FiguresFact]
    public async Task Round_time_with_1_2_and_4_function_processes_against_local_compute()
    {
        var table = new StringBuilder("| compute | ms a round (rounds " + From + "-" + Rounds + ") | invocations | ms an answered invocation at the worker | ms of it computing in the function | overhead ms an invocation |\n| --- | --- | --- | --- | --- | --- |\n");
        foreach (int processes in new[] { 0, 1, 2, 4 })
        {
            var job = new Dictionary<string, string>(EndToEndScenarios.Job("p2p", 1, Rounds, deadlineMs: 20_000, leaseMs: 30_000))
            {
                ["Functions__Enabled"] = processes > 0 ? "true" : "false",
                ["Functions__Shares"] = Math.Max(1, processes).ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["Functions__Attempts"] = "3",
            };
            await using var cluster = new Cluster(job, new DoubleSidecars());
            await cluster.StartAsync("coordinator", "DaprTrain.Coordinator");
            for (int i = 1; i <= processes; i++) await cluster.StartAsync("gradient-function", "DaprTrain.GradientFunction", name: $"function-{i}");
            await cluster.StartAsync("worker-1", "DaprTrain.Worker", new() { ["Job__WorkerId"] = "worker-1" });

            await cluster.WaitUntilAsync(async () => await cluster.AppliedRoundAsync("worker-1") >= From, TimeSpan.FromMinutes(3), $"round {From}");
            var clock = Stopwatch.StartNew();
            await cluster.WaitUntilAsync(async () => await cluster.AppliedRoundAsync("worker-1") >= Rounds, TimeSpan.FromMinutes(5), $"round {Rounds}");
            double perRound = clock.Elapsed.TotalMilliseconds / (Rounds - From);
            await cluster.FinishedAsync(["worker-1"], TimeSpan.FromMinutes(2));

            var counters = (await cluster.StatusAsync("worker-1")).GetProperty("functions");
            if (processes == 0)
            {
                table.Append($"| local (the worker) | {perRound:F1} | 0 | - | - | - |\n");
                continue;
            }
            long served = counters.GetProperty("served").GetInt64();
            counters.GetProperty("fallbacks").GetInt64().Should().Be(0);
            served.Should().Be((long)Rounds * processes, "every share of every round came from a function");
            double answered = counters.GetProperty("answeredMs").GetDouble() / served;
            double compute = 0;
            for (int i = 1; i <= processes; i++) compute += (await cluster.StatusAsync($"function-{i}")).GetProperty("computeMs").GetDouble();
            compute /= served;
            table.Append($"| {processes} function process{(processes > 1 ? "es" : "")} | {perRound:F1} | {served} | {answered:F2} | {compute:F2} | {answered - compute:F2} |\n");
        }
        Console.WriteLine(table);
        File.WriteAllText(Path.Combine(Path.GetTempPath(), "daprtrain-serverless-figures.md"), table.ToString());
    }
}
