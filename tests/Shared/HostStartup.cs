using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.Configuration;

namespace DaprTrain.Tests.Shared;

/// <summary>
/// Starts a service's wiring as its Program.cs does (the same Add... extension), on a test server, and returns why it
/// did not start. Not through WebApplicationFactory: its deferred host resolves the app's services when it is asked to
/// start, and an app whose options failed validation before that has already disposed them, so the test sees an
/// ObjectDisposedException instead of the validation error (aspnetcore's DeferredHost.StartAsync; seen in CI under load,
/// where the app's own start won the race).
/// </summary>
internal static class HostStartup
{
    /// <param name="project">The service's project folder under services/, whose appsettings.json the app reads, as it does when it runs.</param>
    public static async Task<Exception> FailureAsync(string project, Action<WebApplicationBuilder> wire, IEnumerable<KeyValuePair<string, string?>> settings)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions
        {
            EnvironmentName = "Development",
            ContentRootPath = ServicesFolder(project),
        });
        builder.WebHost.UseTestServer();
        builder.Configuration.AddInMemoryCollection(settings);
        wire(builder);
        await using var app = builder.Build();
        try
        {
            await app.StartAsync();
        }
        catch (AggregateException ex) when (ex.InnerExceptions.Select(e => (e.GetType(), e.Message)).Distinct().Count() == 1)
        {
            // One options class validated twice (it is registered with ValidateOnStart by two of the wiring's extensions):
            // the same error twice, which WebApplicationFactory reported once.
            return ex.InnerExceptions[0];
        }
        catch (Exception ex)
        {
            return ex;
        }
        await app.StopAsync();
        throw new InvalidOperationException($"{project} started, with settings {string.Join(", ", settings.Select(s => $"{s.Key}={s.Value}"))}");
    }

    private static string ServicesFolder(string project)
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            string candidate = Path.Combine(directory.FullName, "services", project);
            if (Directory.Exists(candidate)) return candidate;
        }
        throw new DirectoryNotFoundException($"services/{project} not found above {AppContext.BaseDirectory}");
    }
}
