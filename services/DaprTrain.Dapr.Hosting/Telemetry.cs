using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace DaprTrain.Dapr.Hosting;

/// <summary>
/// OpenTelemetry for every service, configured by the standard OTEL_* variables: traces of ASP.NET Core (daprd's
/// deliveries and calls), of the gRPC and HTTP clients (the app's calls to daprd: publish, state, actors) and of the
/// DaprTrain activity source (rounds, deliveries joined to the traceparent daprd puts in each CloudEvent); metrics of
/// the DaprTrain meter and ASP.NET Core. Exported over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set, to Zipkin (the one
/// `dapr init` starts) when OTEL_EXPORTER_ZIPKIN_ENDPOINT is set, and always scrapeable at GET /metrics (Prometheus).
/// OTEL_SDK_DISABLED=true turns it all off.
/// </summary>
public static class Telemetry
{
    /// <summary>The name of the project's activity source and meter.</summary>
    public const string SourceName = "DaprTrain";

    public const string MetricsPath = "/metrics";

    public static IServiceCollection AddDaprTrainTelemetry(this IServiceCollection services, IConfiguration configuration)
    {
        bool otlp = !string.IsNullOrWhiteSpace(configuration["OTEL_EXPORTER_OTLP_ENDPOINT"]);
        bool zipkin = !string.IsNullOrWhiteSpace(configuration["OTEL_EXPORTER_ZIPKIN_ENDPOINT"]);
        // OTEL_SERVICE_NAME wins; otherwise the Dapr app id the CLI and the chart give (APP_ID), else the program's name.
        string service = configuration["OTEL_SERVICE_NAME"] ?? configuration["APP_ID"] ?? AppDomain.CurrentDomain.FriendlyName;
        services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService(service))
            .WithTracing(tracing =>
            {
                tracing.AddSource(SourceName).AddAspNetCoreInstrumentation(o => o.Filter = context => !context.Request.Path.StartsWithSegments(MetricsPath))
                    .AddHttpClientInstrumentation().AddGrpcClientInstrumentation();
                if (otlp) tracing.AddOtlpExporter();
                // The Zipkin exporter is deprecated in favour of OTLP, but the Zipkin that `dapr init` starts (and daprd
                // reports to) speaks only Zipkin's API: the one place a local user sees the app's spans beside daprd's.
#pragma warning disable CS0618
                if (zipkin) tracing.AddZipkinExporter();
#pragma warning restore CS0618
            })
            .WithMetrics(metrics =>
            {
                metrics.AddMeter(SourceName).AddAspNetCoreInstrumentation().AddPrometheusExporter();
                if (otlp) metrics.AddOtlpExporter();
            });
        return services;
    }

    /// <summary>GET /metrics in Prometheus's text format (open like /health: scrapers carry no Dapr token).</summary>
    public static WebApplication MapDaprTrainMetrics(this WebApplication app)
    {
        app.MapPrometheusScrapingEndpoint(MetricsPath);
        return app;
    }
}
