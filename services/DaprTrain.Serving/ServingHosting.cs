using System.Globalization;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;

namespace DaprTrain.Serving;

public static class ServingHosting
{
    public const string PredictPolicy = "predict";

    public static WebApplicationBuilder AddModelServing(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<ServingOptions>()
            .BindConfiguration(ServingOptions.Section)
            .ValidateDataAnnotations()
            .Validate(o => string.IsNullOrEmpty(o.ModelPath) || File.Exists(o.ModelPath), "Serving:ModelPath names no existing file")
            .ValidateOnStart();
        builder.Services.AddSingleton<ModelHost>();
        builder.Services.AddProblemDetails();

        // Kestrel's limits from the options: connections, slow bodies and headers, what a connection buffers, and no
        // body larger than a JSON request of Serving:MaxImagesPerRequest images (the endpoint narrows it per content type).
        builder.Services.AddOptions<KestrelServerOptions>().Configure<IOptions<ServingOptions>>((kestrel, serving) =>
        {
            var o = serving.Value;
            kestrel.AddServerHeader = false;
            kestrel.Limits.MaxConcurrentConnections = o.MaxConcurrentConnections;
            kestrel.Limits.MinRequestBodyDataRate = new MinDataRate(o.MinRequestBodyBytesPerSecond, TimeSpan.FromSeconds(o.MinRequestBodyGraceSeconds));
            kestrel.Limits.RequestHeadersTimeout = TimeSpan.FromSeconds(o.RequestHeadersTimeoutSeconds);
            kestrel.Limits.MaxRequestBufferSize = o.MaxRequestBufferBytes;
            kestrel.Limits.MaxRequestBodySize = o.MaxJsonBodyBytes;
        });

        // Predictions served at once, and a queue; one more gets 429 with Retry-After.
        builder.Services.AddRateLimiter(_ => { });
        builder.Services.AddOptions<RateLimiterOptions>().Configure<IOptions<ServingOptions>>((limiter, serving) =>
        {
            var o = serving.Value;
            limiter.AddConcurrencyLimiter(PredictPolicy, c =>
            {
                c.PermitLimit = o.MaxConcurrentPredictions;
                c.QueueLimit = o.PredictionQueueLength;
                c.QueueProcessingOrder = QueueProcessingOrder.OldestFirst;
            });
            limiter.OnRejected = (context, cancellationToken) =>
            {
                context.HttpContext.Response.Headers.RetryAfter = o.RetryAfterSeconds.ToString(CultureInfo.InvariantCulture);
                return new ValueTask(Results.Problem(
                    $"{o.MaxConcurrentPredictions} predictions are being served and {o.PredictionQueueLength} wait (Serving:MaxConcurrentPredictions, Serving:PredictionQueueLength); retry after {o.RetryAfterSeconds} s",
                    statusCode: StatusCodes.Status429TooManyRequests, title: "too many prediction requests").ExecuteAsync(context.HttpContext));
            };
        });
        return builder;
    }

    public static WebApplication MapModelServing(this WebApplication app)
    {
        // Loaded now, not on the first request: a bad model stops the service at start with the reason.
        var model = app.Services.GetRequiredService<ModelHost>();
        var options = app.Services.GetRequiredService<IOptions<ServingOptions>>().Value;
        var bodyTimeout = TimeSpan.FromSeconds(options.RequestBodyTimeoutSeconds);

        // Before the limiter: a request without the token takes no turn.
        app.UseMiddleware<ApiToken>(app.Configuration[ApiToken.EnvironmentVariable] ?? string.Empty);
        app.UseRateLimiter();

        app.MapGet(ApiToken.HealthPath, () => Results.Json(new { status = "ok", model = model.Info.Sha256 }));
        app.MapGet("/v1/model", () => Results.Json(model.Info));
        app.MapPost("/v1/predict", async (HttpRequest request, CancellationToken cancellationToken) =>
        {
            PredictionRequest.Parsed parsed;
            using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
            {
                timeout.CancelAfter(bodyTimeout);
                try
                {
                    parsed = await PredictionRequest.ReadAsync(request, options, timeout.Token);
                }
                catch (OperationCanceledException) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
                {
                    parsed = PredictionRequest.Parsed.Fail($"the body took longer than Serving:RequestBodyTimeoutSeconds ({options.RequestBodyTimeoutSeconds} s) to arrive",
                        StatusCodes.Status408RequestTimeout);
                }
            }
            if (parsed.Pixels is null)
            {
                return Results.Problem(parsed.Problem, statusCode: parsed.StatusCode,
                    title: parsed.StatusCode switch
                    {
                        StatusCodes.Status413PayloadTooLarge => "prediction request too large",
                        StatusCodes.Status408RequestTimeout => "prediction request too slow",
                        _ => "invalid prediction request",
                    });
            }
            return Results.Json(new { model = model.Info.Sha256, predictions = model.Predict(parsed.Pixels) });
        }).RequireRateLimiting(PredictPolicy);
        return app;
    }
}
