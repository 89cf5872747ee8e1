using System.Text.RegularExpressions;
using DaprTrain.Contracts;
using DaprTrain.Dapr;
using YamlDotNet.RepresentationModel;

namespace DaprTrain.Services.Tests;

/// <summary>
/// Static checks of k8s/daprtrain (helm is not on these machines, so nothing renders it here): the chart and its
/// values parse, every value a template reads exists, every JOB__ variable binds to an option, and the names the
/// code uses are the names the chart deploys.
/// </summary>
public partial class HelmChartTests
{
    private static readonly string Chart = Path.Combine(Repository.Root, "k8s", "daprtrain");

    private static IEnumerable<(string Name, string Text)> Templates() =>
        Directory.GetFiles(Path.Combine(Chart, "templates")).Select(f => (Path.GetFileName(f), File.ReadAllText(f)));

    [Fact]
    public void The_chart_is_a_helm_v2_application_chart()
    {
        var chart = Repository.LoadYaml(Path.Combine(Chart, "Chart.yaml"));
        ((YamlScalarNode)chart["apiVersion"]).Value.Should().Be("v2");
        ((YamlScalarNode)chart["name"]).Value.Should().Be("daprtrain");
        ((YamlScalarNode)chart["version"]).Value.Should().MatchRegex(@"^\d+\.\d+\.\d+");
    }

    [Fact]
    public void Every_value_a_template_reads_is_declared_in_values_yaml()
    {
        var values = Repository.LoadYaml(Path.Combine(Chart, "values.yaml"));
        var missing = new List<string>();
        foreach (var (name, text) in Templates())
        {
            foreach (Match match in ValuesReference().Matches(text))
            {
                YamlNode node = values;
                foreach (string key in match.Groups[1].Value.Split('.'))
                {
                    if (node is YamlMappingNode mapping && mapping.Children.TryGetValue(new YamlScalarNode(key), out var child)) node = child;
                    else { missing.Add($"{name}: .Values.{match.Groups[1].Value}"); break; }
                }
            }
        }
        missing.Should().BeEmpty();
    }

    [Fact]
    public void Template_actions_open_and_close_in_pairs()
    {
        foreach (var (name, text) in Templates())
        {
            var actions = Action().Matches(text).Select(m => m.Groups[1].Value).ToList();
            int opened = actions.Count(a => Regex.IsMatch(a, @"^(if|range|with|define)\b"));
            int closed = actions.Count(a => a == "end");
            closed.Should().Be(opened, $"{name} closes every if, range, with and define");
            text.Split("{{").Length.Should().Be(text.Split("}}").Length, $"{name} has as many {{{{ as }}}}");
        }
    }

    [Fact]
    public void Every_job_and_coordinator_variable_binds_to_an_option_of_the_services()
    {
        // The configuration keys of the job's options and of a worker's identity (both bound from the Job section).
        var job = typeof(TrainingJobOptions).GetProperties().Concat(typeof(WorkerOptions).GetProperties())
            .Select(p => (p.GetCustomAttributes(typeof(Microsoft.Extensions.Configuration.ConfigurationKeyNameAttribute), false)
                .Cast<Microsoft.Extensions.Configuration.ConfigurationKeyNameAttribute>().SingleOrDefault()?.Name ?? p.Name).ToUpperInvariant()).ToHashSet();
        var text = string.Concat(Templates().Select(t => t.Text));
        var variables = EnvironmentName().Matches(text).Select(m => m.Groups[1].Value).Distinct().ToList();

        variables.Should().Contain(["JOB__WORKERID", "JOB__TOPOLOGY", "JOB__WORKERS", "COORDINATOR__SHARDS", "COORDINATOR__LEASEMS"]);
        var jobFields = variables.Where(v => v.StartsWith("JOB__", StringComparison.Ordinal)).Select(v => v["JOB__".Length..]).ToList();
        jobFields.Should().BeSubsetOf(job, "a misspelt variable would be ignored silently");
        variables.Where(v => v.StartsWith("COORDINATOR__", StringComparison.Ordinal)).Select(v => v["COORDINATOR__".Length..])
            .Should().BeSubsetOf(["SHARDS", "LEASEMS", "WORKERSWRITECHECKPOINTS"]);

        var serving = typeof(DaprTrain.Serving.ServingOptions).GetProperties().Select(p => p.Name.ToUpperInvariant()).ToHashSet();
        var servingFields = variables.Where(v => v.StartsWith("SERVING__", StringComparison.Ordinal)).Select(v => v["SERVING__".Length..]).ToList();
        servingFields.Should().Contain("MODELPATH", "the model server cannot start without it").And.BeSubsetOf(serving);
    }

    [Fact]
    public void The_chart_deploys_the_app_ids_and_components_the_code_names()
    {
        var text = string.Concat(Templates().Select(t => t.Text));
        text.Should().Contain($"(list $ \"{DaprApps.Coordinator}\")").And.Contain($"(list $ \"{DaprApps.ParameterServer}\")");
        text.Should().Contain("(list $ \"model-server\")", "the optional model server is a Dapr app too");
        text.Should().Contain($"(list $ \"{DaprApps.Dashboard}\")", "the dashboard is a Dapr app (it subscribes to the progress topic)");
        text.Should().Contain("printf \"worker-%d\" (add $i 1)", "one Deployment and one app id per worker, worker-1 .. worker-N");
        DaprApps.Worker(1).Should().Be("worker-1");

        string components = File.ReadAllText(Path.Combine(Chart, "templates", "components.yaml"));
        ComponentName().Matches(components).Select(m => m.Groups[1].Value).Should().BeEquivalentTo([DaprComponents.PubSub, DaprComponents.StateStore]);
        components.Should().Contain("name: actorStateStore").And.Contain("name: keyPrefix");
        components.Should().Contain("- dashboard", "the dashboard subscribes through the pub/sub component, so it is in its scopes");
        components.Should().Contain($"{{{{- if .Values.exporter.enabled }}}}\n  # `daprtrain export --dapr`").And.Contain($"- {DaprApps.Exporter}",
            "`daprtrain export --dapr` reads the checkpoints through the state store: its app id is in the scopes when the values ask for it");
    }

    [Fact]
    public void The_dashboard_is_on_by_default_serves_browsers_on_its_own_port_and_takes_the_app_token()
    {
        var values = (YamlMappingNode)Repository.LoadYaml(Path.Combine(Chart, "values.yaml"))["dashboard"];
        ((YamlScalarNode)values["enabled"]).Value.Should().Be("true");
        string dashboard = File.ReadAllText(Path.Combine(Chart, "templates", "dashboard.yaml"));
        dashboard.Should().StartWith("{{- if .Values.dashboard.enabled }}");
        dashboard.Should().Contain("name: APP_API_TOKEN", "its Dapr routes refuse calls without daprd's token, as every app's do");
        dashboard.Should().Contain($"value: {DaprComponents.PubSub}", "it subscribes on the component the services publish on");
        dashboard.Should().Contain("kind: Service").And.Contain("targetPort: ui").And.Contain("containerPort: 8081");
        Regex.IsMatch(dashboard, @"name: APP_PORT\s+value: ""8080""").Should().BeTrue("daprd calls the app port the annotations name (8080)");
    }

    [Fact]
    public void The_chart_accepts_every_topology_the_services_know_and_no_other()
    {
        string workers = File.ReadAllText(Path.Combine(Chart, "templates", "workers.yaml"));
        var listed = Regex.Match(workers, @"has \.Values\.job\.topology \(list ([^)]*)\)").Groups[1].Value.Split(' ').Select(n => n.Trim('"'));
        listed.Should().Equal(DaprTrain.Coordination.Topologies.Names, "the chart refuses a name the services would refuse, and only such a name");
        var values = (YamlMappingNode)Repository.LoadYaml(Path.Combine(Chart, "values.yaml"))["job"];
        DaprTrain.Coordination.Topologies.TryParse(((YamlScalarNode)values["topology"]).Value, out _).Should().BeTrue();
    }

    [Fact]
    public void A_data_claim_without_a_data_dir_is_mounted_at_a_path_the_services_are_told()
    {
        // Issue 13 item 10: data.persistentVolumeClaim without job.dataDir rendered `mountPath: ""` for every pod.
        foreach (var (name, text) in Templates().Where(t => t.Text.Contains("mountPath", StringComparison.Ordinal)))
        {
            text.Should().NotContain(".Values.job.dataDir | quote }}\n", $"{name} mounts the data where the services look for it");
            Regex.Matches(text, @"mountPath: (.*)").Select(m => m.Groups[1].Value).Should()
                .OnlyContain(path => path == "/models" || path.Contains("include \"daprtrain.dataDir\"", StringComparison.Ordinal), name);
        }
        string helpers = File.ReadAllText(Path.Combine(Chart, "templates", "_helpers.tpl"));
        Regex.Match(helpers, @"define ""daprtrain.dataDir"".*?else if \.Values\.data\.persistentVolumeClaim -}}\s*(\S+)", RegexOptions.Singleline)
            .Groups[1].Value.Should().Be("/data", "a claim alone is mounted at /data");
        helpers.Should().Contain("{{- with (include \"daprtrain.dataDir\" .) }}\n- name: JOB__DATADIR", "the services are told the same path");
    }

    [Fact]
    public void The_state_store_can_be_postgresql_with_either_broker()
    {
        // Redis advises against itself as an actor state store in production.
        string components = File.ReadAllText(Path.Combine(Chart, "templates", "components.yaml"));
        components.Should().Contain("$state := .Values.components.stateStore").And.Contain("has $state (list \"redis\" \"postgresql\")");
        components.Should().Contain("{{- if eq $state \"redis\" }}\n  type: state.redis").And.Contain("type: state.postgresql");
    }

    /// <summary>
    /// Issue 10: with serverless.enabled the chart deploys the gradient-function app under its one app id, at zero
    /// replicas, with a KEDA ScaledObject on the workers' pending invocations; the workers are told to fan out. Checked
    /// on the template's text and the values (helm is not here to render it).
    /// </summary>
    [Fact]
    public void Serverless_deploys_the_function_app_at_zero_replicas_with_a_keda_scaled_object_on_pending_invocations()
    {
        string text = File.ReadAllText(Path.Combine(Chart, "templates", "gradient-function.yaml"));
        var values = (YamlMappingNode)Repository.LoadYaml(Path.Combine(Chart, "values.yaml"))["serverless"];
        var keda = (YamlMappingNode)values["keda"];
        ((YamlScalarNode)values["enabled"]).Value.Should().Be("false", "serverless is opt-in");
        ((YamlScalarNode)keda["enabled"]).Value.Should().Be("true", "serverless means scaling to zero unless told otherwise");
        ((YamlScalarNode)keda["minReplicas"]).Value.Should().Be("0");

        text.Should().StartWith("{{- if .Values.serverless.enabled }}");
        text.Should().Contain($"(list $ \"{DaprApps.GradientFunction}\")", "every instance runs under the app id the workers invoke");
        text.Should().Contain("replicas: {{ if .Values.serverless.keda.enabled }}{{ .Values.serverless.keda.minReplicas }}{{ else }}",
            "KEDA owns the count, starting from minReplicas (0)");
        text.Should().Contain("kind: ScaledObject").And.Contain("apiVersion: keda.sh/v1alpha1").And.Contain("minReplicaCount: {{ .Values.serverless.keda.minReplicas }}");
        text.Should().Contain("type: prometheus").And.Contain("max_over_time(daprtrain_function_pending").And.Contain("activationThreshold: \"0\"",
            "the gauge is 0 between fan-outs: an instantaneous query would scale to zero mid-job");
        text.Should().Contain(".Capabilities.APIVersions.Has \"keda.sh/v1alpha1/ScaledObject\"", "without KEDA the install stops with a message, not a missing kind");
        text.Should().Contain("scaleTargetRef:\n    name: {{ .Release.Name }}-gradient-function");

        string workers = File.ReadAllText(Path.Combine(Chart, "templates", "workers.yaml"));
        var functionVariables = Regex.Matches(workers, @"name: FUNCTIONS__([A-Z]+)").Select(m => m.Groups[1].Value).ToList();
        functionVariables.Should().Contain("ENABLED").And.BeSubsetOf(typeof(FunctionOptions).GetProperties().Select(p => p.Name.ToUpperInvariant()),
            "a misspelt variable would be ignored silently");
    }

    [GeneratedRegex(@"\.Values\.([A-Za-z0-9_.]+)")]
    private static partial Regex ValuesReference();

    [GeneratedRegex(@"\{\{-?\s*([a-z]+)")]
    private static partial Regex Action();

    [GeneratedRegex(@"name: ((?:JOB|COORDINATOR|SERVING)__[A-Z]+)")]
    private static partial Regex EnvironmentName();

    [GeneratedRegex(@"kind: Component\nmetadata:\n  name: ([a-z-]+)")]
    private static partial Regex ComponentName();
}
