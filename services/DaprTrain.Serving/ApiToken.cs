using System.Security.Cryptography;
using System.Text;

namespace DaprTrain.Serving;

/// <summary>
/// Dapr's app API token, the same check as the other apps' (DaprTrain.Dapr.Hosting's ApiTokenMiddleware), written
/// here because that project brings the Dapr SDK (Dapr.AspNetCore) and the model server stays free of it: when
/// APP_API_TOKEN is set, daprd sends it in the dapr-api-token header on every call to the app; anything else that
/// reaches the server without it gets 401. /health stays open for probes.
/// </summary>
public sealed class ApiToken(RequestDelegate next, string? token)
{
    public const string Header = "dapr-api-token";
    public const string EnvironmentVariable = "APP_API_TOKEN";
    public const string HealthPath = "/health";

    private readonly byte[]? _expected = string.IsNullOrEmpty(token) ? null : Encoding.UTF8.GetBytes(token);

    public Task InvokeAsync(HttpContext context)
    {
        if (_expected is null || context.Request.Path.StartsWithSegments(HealthPath)) return next(context);
        string? presented = context.Request.Headers[Header];
        if (presented is not null && CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(presented), _expected)) return next(context);
        return Results.Problem(presented is null ? $"missing {Header} header" : $"wrong {Header}", statusCode: StatusCodes.Status401Unauthorized,
            title: "unauthorized").ExecuteAsync(context);
    }
}
