using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;

namespace DaprTrain.Dapr.Hosting;

/// <summary>
/// Dapr's app API token: when APP_API_TOKEN is set, daprd sends it in the dapr-api-token header on every call to
/// the app; anything else that reaches the app without it gets 401. The health and metrics endpoints stay open for
/// probes and scrapers.
/// </summary>
public sealed class ApiTokenMiddleware(RequestDelegate next, string? token)
{
    public const string Header = "dapr-api-token";
    public const string EnvironmentVariable = "APP_API_TOKEN";

    /// <summary>Set to true (the run file and the chart do) to make an app refuse to start without <see cref="EnvironmentVariable"/>.</summary>
    public const string RequireVariable = "DAPRTRAIN_REQUIRE_APP_TOKEN";

    private readonly byte[]? _expected = string.IsNullOrEmpty(token) ? null : Encoding.UTF8.GetBytes(token);

    public Task InvokeAsync(HttpContext context)
    {
        if (_expected is null || context.Request.Path.StartsWithSegments(DaprHosting.HealthPath) || context.Request.Path.StartsWithSegments(Telemetry.MetricsPath))
        {
            return next(context);
        }
        string? presented = context.Request.Headers[Header];
        if (presented is not null && CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(presented), _expected)) return next(context);
        context.Response.StatusCode = StatusCodes.Status401Unauthorized;
        return context.Response.WriteAsync(presented is null ? "missing dapr-api-token header" : "wrong dapr-api-token");
    }
}
