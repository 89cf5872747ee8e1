using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace DaprTrain.Dapr;

/// <summary>Wiring every DaprTrain service shares.</summary>
public static class DaprHosting
{
    public const string HealthPath = "/health";

    public static IServiceCollection AddDaprTrainHost(this IServiceCollection services)
    {
        services.AddDaprClient();
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton<SidecarStatus>();
        services.AddHostedService(sp => sp.GetRequiredService<SidecarStatus>());
        return services;
    }

    /// <summary>The API token check goes first, so that nothing else answers an unauthenticated caller.</summary>
    public static IApplicationBuilder UseDaprApiToken(this IApplicationBuilder app, string? token) =>
        app.UseMiddleware<ApiTokenMiddleware>(token ?? string.Empty);

    /// <summary>GET /health: 200 while the process runs, with the sidecar's state in the body.</summary>
    public static IEndpointRouteBuilder MapDaprTrainHealth(this IEndpointRouteBuilder endpoints, string service)
    {
        endpoints.MapGet(HealthPath, (SidecarStatus sidecar) => Results.Json(new { service, status = "running", sidecar = sidecar.Describe() },
            new JsonSerializerOptions(JsonSerializerDefaults.Web)));
        return endpoints;
    }
}
