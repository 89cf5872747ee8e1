namespace DaprTrain.EndToEnd.Tests;

/// <summary>
/// The real-daprd suite's control plane as it is started (issue 13 item 7), checked where daprd is not installed too:
/// two clusters at once (the poison scenario runs a clean cluster beside it) must not meet on a port or an id.
/// </summary>
public sealed class DaprdCommandLineTests
{
    private static Func<string> Ports()
    {
        int next = 40_000;
        return () => (next++).ToString(System.Globalization.CultureInfo.InvariantCulture);
    }

    [Fact]
    public void Two_clusters_control_planes_share_no_port_and_no_raft_or_etcd_member()
    {
        var ports = Ports();
        var first = DaprdSidecars.PlacementArguments(ports, "placement-a", out _).Concat(DaprdSidecars.SchedulerArguments(ports, "scheduler-a", "/tmp/a", out _)).ToList();
        var second = DaprdSidecars.PlacementArguments(ports, "placement-b", out _).Concat(DaprdSidecars.SchedulerArguments(ports, "scheduler-b", "/tmp/b", out _)).ToList();

        static string Value(List<string> arguments, string flag) => arguments[arguments.IndexOf(flag) + 1];
        // Without these flags every placement takes raft port 8201 and every scheduler etcd ports 2379/2380.
        foreach (var arguments in new[] { first, second })
        {
            arguments.Should().Contain(["--initial-cluster", "--etcd-initial-cluster", "--etcd-client-port", "--override-broadcast-host-port"]);
            arguments.Where(a => a == "--listen-address").Should().HaveCount(2, "placement and scheduler listen on loopback");
        }
        var raft = new[] { Value(first, "--initial-cluster"), Value(second, "--initial-cluster") };
        var etcd = new[] { Value(first, "--etcd-initial-cluster"), Value(second, "--etcd-initial-cluster") };
        raft[0].Should().NotBe(raft[1]);
        etcd[0].Should().NotBe(etcd[1]);
        Value(first, "--etcd-client-port").Should().NotBe(Value(second, "--etcd-client-port"));
        raft[0].Should().StartWith("placement-a=127.0.0.1:");
        etcd[0].Should().StartWith("scheduler-a=http://127.0.0.1:");
    }

    [Fact]
    public void A_missing_scheduler_is_a_reason_to_skip_the_real_daprd_suite()
    {
        // From Dapr 1.15 reminders live in the scheduler; a suite started without one fails, it does not skip.
        if (DaprdSidecars.Find("scheduler") is not null || Environment.GetEnvironmentVariable("DAPRTRAIN_E2E_SCHEDULER") is { Length: > 0 }) return;
        DaprdSidecars.MissingReason.Should().Contain("scheduler (reminders need it from Dapr 1.15");
    }
}
