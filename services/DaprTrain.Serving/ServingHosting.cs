using Microsoft.Extensions.Options;

namespace DaprTrain.Serving;

public static class ServingHosting
{
    public static WebApplicationBuilder AddModelServing(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<ServingOptions>()
            .BindConfiguration(ServingOptions.Section)
            .ValidateDataAnnotations()
            .Validate(o => string.IsNullOrEmpty(o.ModelPath) || File.Exists(o.ModelPath), "Serving:ModelPath names no existing file")
            .ValidateOnStart();
        builder.Services.AddSingleton<ModelHost>();
        builder.Services.AddProblemDetails();
        return builder;
    }

    public static WebApplication MapModelServing(this WebApplication app)
    {
        // Loaded now, not on the first request: a bad model stops the service at start with the reason.
        var model = app.Services.GetRequiredService<ModelHost>();
        int maxImages = app.Services.GetRequiredService<IOptions<ServingOptions>>().Value.MaxImagesPerRequest;

        app.MapGet("/health", () => Results.Json(new { status = "ok", model = model.Info.Sha256 }));
        app.MapGet("/v1/model", () => Results.Json(model.Info));
        app.MapPost("/v1/predict", async (HttpRequest request, CancellationToken cancellationToken) =>
        {
            var parsed = await PredictionRequest.ReadAsync(request, maxImages, cancellationToken);
            if (parsed.Pixels is null) return Results.Problem(parsed.Problem, statusCode: parsed.StatusCode, title: "invalid prediction request");
            return Results.Json(new { model = model.Info.Sha256, predictions = model.Predict(parsed.Pixels) });
        });
        return app;
    }
}
