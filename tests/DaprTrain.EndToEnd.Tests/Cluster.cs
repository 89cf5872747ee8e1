using System.Net;
using System.Text.Json;
using DaprTrain.SidecarDouble;

namespace DaprTrain.EndToEnd.Tests;

/// <summary>
/// Apps and their sidecar doubles on free loopback ports, sharing one set of components. Every process is
/// killed and every sidecar stopped when the cluster is disposed, whatever the test did.
/// </summary>
public sealed class Cluster : IAsyncDisposable
{
    private readonly List<ServiceProcess> _processes = [];
    private readonly List<ISidecar> _sidecars = [];
    private readonly Dictionary<string, string> _job;

    public Cluster(Dictionary<string, string> job, ISidecarProvider sidecarProvider)
    {
        _job = job;
        SidecarProvider = sidecarProvider;
    }

    public ISidecarProvider SidecarProvider { get; }

    public HttpClient Http { get; } = new() { Timeout = TimeSpan.FromSeconds(10) };

    public Dictionary<string, Uri> Apps { get; } = [];

    /// <summary>The latest sidecar of each app id.</summary>
    public Dictionary<string, ISidecar> Sidecars { get; } = [];

    public static string RepositoryRoot
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "DaprTrain.sln"))) dir = dir.Parent;
            return dir?.FullName ?? throw new InvalidOperationException("DaprTrain.sln not found above the test output");
        }
    }

    /// <summary>
    /// The MNIST folder the services train on: DAPRTRAIN_TEST_MNIST (set by .ci/run), else shared/datasets/mnist in a
    /// folder above the repository.
    /// </summary>
    public static string MnistDirectory
    {
        get
        {
            string? configured = Environment.GetEnvironmentVariable("DAPRTRAIN_TEST_MNIST");
            if (!string.IsNullOrEmpty(configured)) return configured;
            for (var dir = new DirectoryInfo(RepositoryRoot); dir is not null; dir = dir.Parent)
            {
                string candidate = Path.Combine(dir.FullName, "shared", "datasets", "mnist");
                if (File.Exists(Path.Combine(candidate, "t10k-images-idx3-ubyte.gz")) || File.Exists(Path.Combine(candidate, "t10k-images-idx3-ubyte"))) return candidate;
            }
            throw new InvalidOperationException("MNIST not found for the end-to-end tests: set DAPRTRAIN_TEST_MNIST to a folder with the MNIST IDX files.");
        }
    }

    private static string Dll(string project)
    {
        // The same configuration as this test assembly (bin/<Configuration>/net10.0).
        string configuration = new DirectoryInfo(AppContext.BaseDirectory).Parent!.Name;
        string path = Path.Combine(RepositoryRoot, "services", project, "bin", configuration, "net10.0", project + ".dll");
        return File.Exists(path) ? path : throw new FileNotFoundException($"{path} is not built; build the solution first", path);
    }

    /// <summary>Starts the app's sidecar, then the app pointed at it, then lets the sidecar read the app's subscriptions and actors.</summary>
    /// <param name="name">What the test calls this process (its key in <see cref="Apps"/> and <see cref="Sidecars"/>): the app id, unless several instances run under one id.</param>
    public Task<ServiceProcess> StartAsync(string appId, string project, Dictionary<string, string>? extra = null, int? appPort = null, string? name = null) =>
        StartAppAsync(appId, extra, appPort, name, (processName, environment) => new ServiceProcess(processName, Dll(project), environment));

    /// <summary>
    /// The dashboard (services/dashboard, Node.js) as one more app with its sidecar: its Dapr side on the app port, its
    /// browser side on <paramref name="uiPort"/>. It must be built (npm ci and npm run build there; ./test.sh does it first).
    /// </summary>
    public Task<ServiceProcess> StartDashboardAsync(int uiPort, Dictionary<string, string>? extra = null)
    {
        string folder = Path.Combine(RepositoryRoot, "services", "dashboard");
        string server = Path.Combine(folder, "dist", "server.js");
        if (!File.Exists(server))
        {
            throw new FileNotFoundException($"{server} is not built: run `npm ci && npm run build` in services/dashboard (./test.sh does it before the .NET tests)", server);
        }
        var environment = new Dictionary<string, string>(extra ?? [])
        {
            ["PUBSUB_NAME"] = "gradients", // DaprComponents.PubSub, as in dapr.yaml
            ["DASHBOARD_UI_PORT"] = uiPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
        return StartAppAsync("dashboard", environment, null, null, (processName, env) =>
        {
            env["APP_PORT"] = new Uri(env["ASPNETCORE_URLS"]).Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
            return new ServiceProcess(processName, "node", [server], env, folder);
        });
    }

    private async Task<ServiceProcess> StartAppAsync(string appId, Dictionary<string, string>? extra, int? appPort, string? name,
        Func<string, Dictionary<string, string>, ServiceProcess> start)
    {
        name ??= appId;
        int port = appPort ?? Sidecar.FreePort();
        var url = new Uri($"http://127.0.0.1:{port}/");
        var sidecar = await SidecarProvider.StartAsync(appId, url);
        _sidecars.Add(sidecar);
        Sidecars[name] = sidecar;
        var environment = new Dictionary<string, string>(_job)
        {
            ["ASPNETCORE_URLS"] = url.ToString().TrimEnd('/'),
            ["Logging__LogLevel__Default"] = "Information",
            ["Logging__Console__TimestampFormat"] = "HH:mm:ss.fff ",
        };
        foreach (var (key, value) in sidecar.AppEnvironment) environment[key] = value;
        foreach (var (key, value) in extra ?? []) environment[key] = value;
        var process = start(name, environment);
        _processes.Add(process);
        Apps[name] = url;
        try
        {
            await sidecar.AttachAppAsync(TimeSpan.FromSeconds(60));
        }
        catch (TimeoutException ex)
        {
            throw new TimeoutException(ex.Message + "\n" + process.Tail(), ex);
        }
        return process;
    }

    public async Task<JsonElement> StatusAsync(string appId)
    {
        try
        {
            using var json = JsonDocument.Parse(await Http.GetStringAsync(new Uri(Apps[appId], "status")));
            return json.RootElement.Clone();
        }
        catch (HttpRequestException)
        {
            return default;
        }
    }

    public async Task<long> AppliedRoundAsync(string appId)
    {
        var status = await StatusAsync(appId);
        return status.ValueKind == JsonValueKind.Object ? status.GetProperty("appliedRound").GetInt64() : -1;
    }

    /// <summary>The held-out accuracy a worker reports once it has run all its rounds, or null before.</summary>
    public async Task<double?> FinalAccuracyAsync(string appId)
    {
        var status = await StatusAsync(appId);
        return status.ValueKind == JsonValueKind.Object && status.TryGetProperty("finalAccuracy", out var accuracy) && accuracy.ValueKind == JsonValueKind.Number
            ? accuracy.GetDouble()
            : null;
    }

    /// <summary>Waits until every named worker has finished and evaluated; returns their held-out accuracies.</summary>
    public async Task<double[]> FinishedAsync(IEnumerable<string> workers, TimeSpan timeout)
    {
        var ids = workers.ToArray();
        double?[] accuracies = [];
        await WaitUntilAsync(async () =>
        {
            accuracies = await Task.WhenAll(ids.Select(FinalAccuracyAsync));
            return accuracies.All(a => a is not null);
        }, timeout, string.Join(", ", ids) + " to finish");
        return accuracies.Select(a => a!.Value).ToArray();
    }

    public async Task WaitUntilAsync(Func<Task<bool>> condition, TimeSpan timeout, string what)
    {
        var until = DateTime.UtcNow + timeout;
        while (!await condition())
        {
            if (DateTime.UtcNow > until)
            {
                throw new TimeoutException($"timed out waiting for {what}; full logs in {SaveLogs()}\n" + string.Join("\n", _processes.Select(p => p.Tail())));
            }
            await Task.Delay(200);
        }
    }

    /// <summary>Writes every process's whole output, and the actor calls the sidecars forwarded, to a new folder; returns it.</summary>
    public string SaveLogs()
    {
        string folder = Path.Combine(Path.GetTempPath(), "daprtrain-e2e", DateTime.UtcNow.ToString("yyyyMMdd-HHmmss-fff", System.Globalization.CultureInfo.InvariantCulture));
        Directory.CreateDirectory(folder);
        for (int i = 0; i < _processes.Count; i++) File.WriteAllLines(Path.Combine(folder, $"{i:00}-{_processes[i].Name}.log"), _processes[i].Output);
        SidecarProvider.SaveLogs(folder);
        return folder;
    }

    public string Logs => string.Join("\n", _processes.Select(p => p.Tail(40)));

    /// <summary>Every line every process has written so far.</summary>
    public string AllOutput => string.Join("\n", _processes.SelectMany(p => p.Output));

    public async ValueTask DisposeAsync()
    {
        foreach (var process in _processes) process.Dispose();
        foreach (var sidecar in _sidecars) await sidecar.DisposeAsync();
        await SidecarProvider.DisposeAsync();
        Http.Dispose();
    }
}
