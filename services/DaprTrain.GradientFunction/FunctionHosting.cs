using DaprTrain.Contracts;
using DaprTrain.Dapr;
using DaprTrain.Dapr.Hosting;

namespace DaprTrain.GradientFunction;

public static class FunctionHosting
{
    public const string GradientRoute = "/" + DaprMethods.Gradient;

    public static WebApplicationBuilder AddGradientFunction(this WebApplicationBuilder builder)
    {
        builder.Services.AddDaprTrainHost(builder.Configuration);
        // The job's options, as the workers read them: the model, the batch size, the data the sample indices point into.
        builder.Services.AddOptions<TrainingJobOptions>()
            .BindConfiguration(TrainingJobOptions.Section)
            .ValidateDataAnnotations()
            .ValidateOnStart();
        builder.Services.AddOptions<GradientFunctionOptions>()
            .BindConfiguration(GradientFunctionOptions.Section)
            .ValidateDataAnnotations()
            .ValidateOnStart();
        builder.Services.AddSingleton<FunctionRuntime>();
        return builder;
    }

    /// <summary>
    /// POST /gradient (what daprd calls for POST /v1.0/invoke/gradient-function/method/gradient), GET /status, and what
    /// every app answers daprd with. The model and the data load as the app starts: its cold start.
    /// </summary>
    public static WebApplication MapGradientFunction(this WebApplication app)
    {
        app.MapDaprTrainApp(DaprApps.GradientFunction);
        app.MapPost(GradientRoute, (HttpRequest request, FunctionRuntime runtime, CancellationToken cancellationToken) => runtime.InvokeAsync(request, cancellationToken));
        app.MapGet("/status", (FunctionRuntime runtime) => Results.Json(runtime.Status()));
        app.Lifetime.ApplicationStarted.Register(() => app.Services.GetRequiredService<FunctionRuntime>().Warm());
        return app;
    }
}
