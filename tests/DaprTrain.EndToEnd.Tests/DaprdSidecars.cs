using System.Globalization;
using System.Net;
using DaprTrain.SidecarDouble;

namespace DaprTrain.EndToEnd.Tests;

/// <summary>
/// Real Dapr for the end-to-end scenarios: one daprd process per app, a placement service (and a scheduler, which
/// Dapr 1.15 and later use for actor reminders), and the repository's own Redis components (components/redis) pointed
/// at a Redis of the test's own. What is not on this machine is reported by <see cref="MissingReason"/>, and the
/// tests are skipped with it.
/// </summary>
public sealed class DaprdSidecars : ISidecarProvider
{
    private const string PlacementVariable = "DAPRTRAIN_E2E_PLACEMENT";
    private const string SchedulerVariable = "DAPRTRAIN_E2E_SCHEDULER";
    private const string RedisVariable = "DAPRTRAIN_E2E_REDIS";
    private static readonly Dictionary<string, string> NoEnvironment = [];

    private readonly List<ServiceProcess> _controlPlane = [];
    private readonly List<Started> _sidecars = [];
    private readonly List<Started> _retired = [];
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "daprtrain-daprd-" + Guid.NewGuid().ToString("N")[..8]);
    private readonly string _placement;
    private readonly string? _scheduler;

    private DaprdSidecars()
    {
        Directory.CreateDirectory(_folder);
        _placement = Environment.GetEnvironmentVariable(PlacementVariable) is { Length: > 0 } placement ? placement : StartPlacement();
        _scheduler = Environment.GetEnvironmentVariable(SchedulerVariable) is { Length: > 0 } scheduler ? scheduler : StartScheduler();
        string redis = Environment.GetEnvironmentVariable(RedisVariable) is { Length: > 0 } address ? address : StartRedis();
        string resources = Path.Combine(_folder, "components");
        Directory.CreateDirectory(resources);
        foreach (string file in Directory.GetFiles(Path.Combine(Cluster.RepositoryRoot, "components", "redis"), "*.yaml"))
        {
            File.WriteAllText(Path.Combine(resources, Path.GetFileName(file)), File.ReadAllText(file).Replace("localhost:6379", redis, StringComparison.Ordinal));
        }
        ResourcesPath = resources;
    }

    public string ResourcesPath { get; }

    /// <summary>Why the real-daprd suite cannot run here, or null when it can.</summary>
    public static string? MissingReason
    {
        get
        {
            var missing = new List<string>();
            if (Find("daprd") is null) missing.Add("daprd");
            if (Environment.GetEnvironmentVariable(PlacementVariable) is not { Length: > 0 } && Find("placement") is null) missing.Add($"placement (or {PlacementVariable}=host:port)");
            // From Dapr 1.15 reminders live in the scheduler: without one, registering the coordinator's reminder fails.
            if (Environment.GetEnvironmentVariable(SchedulerVariable) is not { Length: > 0 } && Find("scheduler") is null) missing.Add($"scheduler (reminders need it from Dapr 1.15; or {SchedulerVariable}=host:port)");
            if (Environment.GetEnvironmentVariable(RedisVariable) is not { Length: > 0 } && Find("redis-server") is null) missing.Add($"redis-server (or {RedisVariable}=host:port)");
            return missing.Count == 0
                ? null
                : $"real-daprd suite skipped: {string.Join(", ", missing)} not found on PATH or in ~/.dapr/bin. Install Dapr (`dapr init`, or `dapr init --slim` plus a Redis) to run it; see README, \"End-to-end tests against real Dapr\".";
        }
    }

    public static async Task<DaprdSidecars> StartAsync()
    {
        var sidecars = new DaprdSidecars();
        await Task.Delay(TimeSpan.FromSeconds(1)); // placement and Redis open their ports
        return sidecars;
    }

    public static string? Find(string executable)
    {
        var folders = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Append(Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".dapr", "bin"));
        return folders.Select(folder => Path.Combine(folder, executable)).FirstOrDefault(File.Exists);
    }

    private static string Port() => Sidecar.FreePort().ToString(CultureInfo.InvariantCulture);

    /// <summary>
    /// The placement service's command line. Its raft port and id default to 127.0.0.1:8201 and dapr-placement-0 for
    /// every placement, so two clusters at once (the poison scenario runs a clean one beside it) would collide there:
    /// each gets its own (dapr/dapr cmd/placement/options: --id, --initial-cluster).
    /// </summary>
    internal static string[] PlacementArguments(Func<string> port, string id, out string address)
    {
        string grpc = port();
        address = "127.0.0.1:" + grpc;
        return ["--id", id, "--initial-cluster", $"{id}=127.0.0.1:{port()}", "--listen-address", "127.0.0.1",
            "--port", grpc, "--healthz-port", port(), "--metrics-port", port()];
    }

    /// <summary>
    /// The scheduler's command line. Its embedded etcd defaults to client port 2379 and peer port 2380 (id
    /// dapr-scheduler-server-0) for every scheduler, and on a loopback-only host it must be told to listen on and
    /// broadcast 127.0.0.1 (dapr/dapr cmd/scheduler/options: --id, --etcd-initial-cluster, --etcd-client-port,
    /// --listen-address, --override-broadcast-host-port).
    /// </summary>
    internal static string[] SchedulerArguments(Func<string> port, string id, string dataDirectory, out string address)
    {
        string grpc = port();
        address = "127.0.0.1:" + grpc;
        return ["--id", id, "--etcd-initial-cluster", $"{id}=http://127.0.0.1:{port()}", "--etcd-client-port", port(),
            "--etcd-client-listen-address", "127.0.0.1", "--listen-address", "127.0.0.1", "--override-broadcast-host-port", address,
            "--port", grpc, "--healthz-port", port(), "--metrics-port", port(), "--etcd-data-dir", dataDirectory];
    }

    private string Id(string service) => $"{service}-{Path.GetFileName(_folder)}";

    private string StartPlacement()
    {
        var arguments = PlacementArguments(Port, Id("placement"), out string address);
        _controlPlane.Add(new ServiceProcess("placement", Find("placement")!, arguments, NoEnvironment, _folder));
        return address;
    }

    private string? StartScheduler()
    {
        if (Find("scheduler") is not { } scheduler) return null;
        string data = Path.Combine(_folder, "scheduler");
        Directory.CreateDirectory(data);
        var arguments = SchedulerArguments(Port, Id("scheduler"), data, out string address);
        _controlPlane.Add(new ServiceProcess("scheduler", scheduler, arguments, NoEnvironment, _folder));
        return address;
    }

    private string StartRedis()
    {
        string port = Port();
        _controlPlane.Add(new ServiceProcess("redis", Find("redis-server")!, ["--port", port, "--save", "", "--appendonly", "no"], NoEnvironment, _folder));
        return "127.0.0.1:" + port;
    }

    public async Task<ISidecar> StartAsync(string appId, Uri appUrl)
    {
        // An app started again (a worker process that rejoins) gets a new daprd: the old one of the same app id must be
        // gone first, or two daprd with one app id share its consumer group and placement entry.
        foreach (var old in _sidecars.Where(s => s.AppId == appId).ToList())
        {
            await old.DisposeAsync();
            _sidecars.Remove(old);
            _retired.Add(old);
        }
        var sidecar = new Started(this, appId, appUrl);
        _sidecars.Add(sidecar);
        sidecar.Start();
        return sidecar;
    }

    public void SaveLogs(string folder)
    {
        foreach (var process in _controlPlane) File.WriteAllLines(Path.Combine(folder, process.Name + ".log"), process.Output);
        foreach (var sidecar in _retired.Concat(_sidecars)) sidecar.SaveLog(folder);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var sidecar in _sidecars) await sidecar.DisposeAsync();
        foreach (var process in _controlPlane) process.Dispose();
        try
        {
            Directory.Delete(_folder, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    /// <summary>One daprd, with the ports it keeps across a restart.</summary>
    private sealed class Started(DaprdSidecars owner, string appId, Uri appUrl) : ISidecar
    {
        public string AppId => appId;

        private readonly string _httpPort = Port();
        private readonly string _grpcPort = Port();
        private readonly string _internalGrpcPort = Port();
        private readonly string _metricsPort = Port();
        private readonly List<ServiceProcess> _runs = [];

        public IReadOnlyDictionary<string, string> AppEnvironment => new Dictionary<string, string>
        {
            ["DAPR_HTTP_PORT"] = _httpPort,
            ["DAPR_GRPC_PORT"] = _grpcPort,
        };

        public void Start()
        {
            var arguments = new List<string>
            {
                "--app-id", appId, "--app-port", appUrl.Port.ToString(CultureInfo.InvariantCulture), "--app-protocol", "http",
                "--dapr-http-port", _httpPort, "--dapr-grpc-port", _grpcPort, "--dapr-internal-grpc-port", _internalGrpcPort,
                "--metrics-port", _metricsPort, "--resources-path", owner.ResourcesPath,
                "--placement-host-address", owner._placement, "--log-level", "info",
            };
            if (owner._scheduler is not null) arguments.AddRange(["--scheduler-host-address", owner._scheduler]);
            _runs.Add(new ServiceProcess($"daprd-{appId}-{_runs.Count}", Find("daprd")!, arguments, NoEnvironment, owner._folder));
        }

        public async Task AttachAppAsync(TimeSpan timeout)
        {
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
            var until = DateTime.UtcNow + timeout;
            while (true)
            {
                try
                {
                    using var health = await http.GetAsync(new Uri($"http://127.0.0.1:{_httpPort}/v1.0/healthz"));
                    if (health.StatusCode == HttpStatusCode.NoContent) return;
                }
                catch (HttpRequestException)
                {
                }
                if (DateTime.UtcNow > until) throw new TimeoutException($"daprd of {appId} did not report healthy within {timeout}\n{_runs[^1].Tail(30)}");
                await Task.Delay(200);
            }
        }

        /// <summary>SIGKILL to daprd, then a new daprd on the same ports after <paramref name="duration"/>.</summary>
        public async Task GoDownAsync(TimeSpan duration)
        {
            _runs[^1].Kill();
            await Task.Delay(duration);
            Start();
        }

        public void SaveLog(string folder)
        {
            foreach (var run in _runs) File.WriteAllLines(Path.Combine(folder, run.Name + ".log"), run.Output);
        }

        public ValueTask DisposeAsync()
        {
            foreach (var run in _runs) run.Dispose();
            return ValueTask.CompletedTask;
        }
    }
}

/// <summary>A fact that runs only where real Dapr is installed; elsewhere it is skipped with the reason.</summary>
public sealed class DaprdFactAttribute : FactAttribute
{
    public DaprdFactAttribute()
    {
        if (DaprdSidecars.MissingReason is { } reason) Skip = reason;
    }
}
