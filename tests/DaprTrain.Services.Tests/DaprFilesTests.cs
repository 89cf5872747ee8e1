using DaprTrain.Contracts;
using YamlDotNet.RepresentationModel;

namespace DaprTrain.Services.Tests;

/// <summary>components/*/*.yaml and dapr.yaml parse and name exactly what the code uses.</summary>
public class DaprFilesTests
{
    private static readonly string Root = Repository.Root;

    private static string Scalar(YamlMappingNode node, params string[] path)
    {
        YamlNode current = node;
        foreach (var key in path) current = ((YamlMappingNode)current).Children[new YamlScalarNode(key)];
        return ((YamlScalarNode)current).Value!;
    }

    private static Dictionary<string, string> Metadata(YamlMappingNode component) =>
        ((YamlSequenceNode)((YamlMappingNode)component.Children[new YamlScalarNode("spec")]).Children[new YamlScalarNode("metadata")])
            .Cast<YamlMappingNode>()
            .ToDictionary(m => Scalar(m, "name"), m => Scalar(m, "value"));

    public static TheoryData<string> Profiles() => ["redis", "kafka"];

    [Theory]
    [MemberData(nameof(Profiles))]
    public void Each_profile_declares_the_component_names_the_code_uses(string profile)
    {
        var resources = Directory.GetFiles(Path.Combine(Root, "components", profile), "*.yaml").Select(Repository.LoadYaml).ToList();
        resources.Should().OnlyContain(c => Scalar(c, "apiVersion") == "dapr.io/v1alpha1" && (Scalar(c, "kind") == "Component" || Scalar(c, "kind") == "Resiliency"));
        var components = resources.Where(c => Scalar(c, "kind") == "Component").ToList();
        components.Select(c => Scalar(c, "metadata", "name")).Should().BeEquivalentTo(DaprComponents.PubSub, DaprComponents.StateStore);

        var pubsub = components.Single(c => Scalar(c, "metadata", "name") == DaprComponents.PubSub);
        var state = components.Single(c => Scalar(c, "metadata", "name") == DaprComponents.StateStore);
        Metadata(state)["actorStateStore"].Should().Be("true", "the coordinator's actors keep their state there");
        Metadata(state)["keyPrefix"].Should().Be("name", "apps share checkpoint keys, which the default app-id prefix would separate");
        string pubsubType = Scalar(pubsub, "spec", "type");
        var pubsubMetadata = Metadata(pubsub);
        if (pubsubType == "pubsub.redis")
        {
            pubsubMetadata.Should().ContainKey("redisHost");
            // Issue 13 item 9: without a bound each topic's stream kept every message (650 MB after 300 rounds of 3 workers).
            int.Parse(pubsubMetadata.Should().ContainKey("maxLenApprox").WhoseValue, System.Globalization.CultureInfo.InvariantCulture)
                .Should().BeInRange(8 * 4, 4096, "a few rounds of 8 workers' messages, not an unbounded backlog");
        }
        else
        {
            pubsubType.Should().Be("pubsub.kafka");
            pubsubMetadata.Should().ContainKeys("brokers", "authType");
            int.Parse(pubsubMetadata["maxMessageBytes"]).Should().BeGreaterThan(512 * 1024, "chunks of 512 KiB must fit");
        }
        Scalar(state, "spec", "type").Should().BeOneOf("state.redis", "state.postgresql");
        var scopes = ((YamlSequenceNode)pubsub.Children[new YamlScalarNode("scopes")]).Cast<YamlScalarNode>().Select(s => s.Value).ToList();
        scopes.Should().Contain([DaprApps.ParameterServer, DaprApps.Worker(1)]).And.Contain(DaprApps.Coordinator, "the coordinator reads the dead-letter topic")
            .And.Contain(DaprApps.Dashboard, "the dashboard reads the progress topic");
        var stateScopes = ((YamlSequenceNode)state.Children[new YamlScalarNode("scopes")]).Cast<YamlScalarNode>().Select(s => s.Value).ToList();
        stateScopes.Should().Contain([DaprApps.Coordinator, DaprApps.ParameterServer, DaprApps.Worker(1)])
            .And.Contain(DaprApps.Exporter, "the README exports the services' model with `dapr run --app-id exporter -- daprtrain export --dapr`");
    }

    [Fact]
    public void The_run_file_starts_the_coordinator_the_server_and_workers_with_distinct_ports()
    {
        var run = Repository.LoadYaml(Path.Combine(Root, "dapr.yaml"));
        Scalar(run, "version").Should().Be("1");
        var resources = ((YamlSequenceNode)((YamlMappingNode)run.Children[new YamlScalarNode("common")]).Children[new YamlScalarNode("resourcesPaths")]).Cast<YamlScalarNode>().ToList();
        resources.Should().OnlyContain(r => Directory.Exists(Path.Combine(Root, r.Value!)));

        var apps = ((YamlSequenceNode)run.Children[new YamlScalarNode("apps")]).Cast<YamlMappingNode>().ToList();
        apps.Select(a => Scalar(a, "appID")).Should().Contain([DaprApps.Coordinator, DaprApps.ParameterServer, DaprApps.Worker(1), DaprApps.Worker(2), DaprApps.Worker(3), DaprApps.Dashboard]);
        // The dashboard is the TypeScript app: it starts its built server, and it subscribes through the pub/sub component's scopes.
        var dashboard = apps.Single(a => Scalar(a, "appID") == DaprApps.Dashboard);
        File.Exists(Path.Combine(Root, Scalar(dashboard, "appDirPath"), "package.json")).Should().BeTrue("the dashboard points at the Node app");
        ((YamlSequenceNode)dashboard.Children[new YamlScalarNode("command")]).Cast<YamlScalarNode>().Select(c => c.Value).Should().Equal("node", "dist/server.js");
        Scalar(dashboard, "env", "PUBSUB_NAME").Should().Be(DaprComponents.PubSub);
        Scalar(dashboard, "env", "APP_PORT").Should().Be(Scalar(dashboard, "appPort"), "the dashboard listens where daprd calls it");
        apps.Remove(dashboard);
        foreach (var app in apps)
        {
            string dir = Path.Combine(Root, Scalar(app, "appDirPath"));
            Directory.GetFiles(dir, "*.csproj").Should().ContainSingle($"{Scalar(app, "appID")} points at a service project");
        }
        var ports = apps.SelectMany(a => new[] { "appPort", "daprHTTPPort", "daprGRPCPort" }.Select(k => Scalar(a, k))).ToList();
        ports.Should().OnlyHaveUniqueItems();
        apps.Where(a => Scalar(a, "appID").StartsWith("worker-", StringComparison.Ordinal))
            .Should().OnlyContain(a => Scalar(a, "env", "JOB__WORKERID") == Scalar(a, "appID"), "a worker's id is its app id");

        // Issue 13 item 8: five `dotnet run` builds of overlapping projects at once collide; the apps start from the
        // solution's build output, and a health check path only counts with the check enabled.
        foreach (var app in apps)
        {
            string project = Path.GetFileName(Scalar(app, "appDirPath"));
            var command = ((YamlSequenceNode)app.Children[new YamlScalarNode("command")]).Cast<YamlScalarNode>().Select(c => c.Value).ToList();
            command.Should().StartWith(["dotnet", $"bin/Release/net10.0/{project}.dll"], $"{Scalar(app, "appID")} starts its built program");
            if (app.Children.ContainsKey(new YamlScalarNode("appHealthCheckPath"))) Scalar(app, "enableAppHealthCheck").Should().Be("true");
        }
        File.ReadAllText(Path.Combine(Root, "dapr.yaml")).Should().Contain("dotnet build DaprTrain.sln -c Release", "the run file says to build first");
    }

    [Theory]
    [MemberData(nameof(Profiles))]
    public void Each_profile_ships_a_resiliency_policy_so_no_failed_delivery_is_simply_lost(string profile)
    {
        // Issue 13 item 1: from components-contrib v1.17 pubsub.redis acknowledges a failed delivery unless an inbound
        // retry policy exists; state and actor calls get outbound policies too.
        var resiliency = Directory.GetFiles(Path.Combine(Root, "components", profile), "*.yaml").Select(Repository.LoadYaml)
            .Should().ContainSingle(r => Scalar(r, "kind") == "Resiliency").Which;
        var spec = (YamlMappingNode)resiliency.Children[new YamlScalarNode("spec")];
        var retries = (YamlMappingNode)((YamlMappingNode)spec.Children[new YamlScalarNode("policies")]).Children[new YamlScalarNode("retries")];
        string Policy(params string[] path) => Scalar(spec, ["targets", .. path]);

        var inbound = (YamlMappingNode)retries.Children[new YamlScalarNode(Policy("components", DaprComponents.PubSub, "inbound", "retry"))];
        int.Parse(Scalar(inbound, "maxRetries"), System.Globalization.CultureInfo.InvariantCulture).Should().BePositive();
        retries.Children.Should().ContainKey(new YamlScalarNode(Policy("components", DaprComponents.StateStore, "outbound", "retry")));
        retries.Children.Should().ContainKey(new YamlScalarNode(Policy("actors", DaprActorTypes.JobCoordinator, "retry")));
        File.ReadAllText(Path.Combine(Root, "k8s", "daprtrain", "templates", "resiliency.yaml")).Should()
            .Contain("kind: Resiliency").And.Contain("inbound:").And.Contain(DaprActorTypes.JobCoordinator, "the chart deploys the same policy");
    }
}
