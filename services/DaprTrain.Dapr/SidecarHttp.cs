using System.Net;

namespace DaprTrain.Dapr;

/// <summary>The sidecar's HTTP API for what the SDK's DaprClient only does over gRPC (issue 16: publishing, <see cref="DaprMessagePublisher"/>).</summary>
public static class SidecarHttp
{
    /// <summary>The longest part of an error answer read into an exception's message: whatever a sidecar sends, the message stays short.</summary>
    public const int MaxErrorChars = 512;

    /// <summary>
    /// A client of the sidecar's HTTP API where the SDK finds it (DAPR_HTTP_ENDPOINT, else DAPR_HTTP_PORT on 127.0.0.1,
    /// else 3500), with DAPR_API_TOKEN in the dapr-api-token header when set, as the SDK sends it.
    /// </summary>
    public static HttpClient Create(string? endpoint = null, string? apiToken = null)
    {
        endpoint ??= global::Dapr.DaprDefaults.GetDefaultHttpEndpoint();
        apiToken ??= Environment.GetEnvironmentVariable("DAPR_API_TOKEN");
        if (!Uri.TryCreate(endpoint, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
        {
            throw new InvalidOperationException($"the Dapr sidecar's HTTP endpoint '{endpoint}' is no http(s) URL (DAPR_HTTP_ENDPOINT, or DAPR_HTTP_PORT)");
        }
        var http = new HttpClient(new SocketsHttpHandler { PooledConnectionIdleTimeout = TimeSpan.FromMinutes(1) })
        {
            BaseAddress = new Uri(uri.AbsoluteUri.TrimEnd('/') + "/"),
            Timeout = TimeSpan.FromSeconds(60),
        };
        if (!string.IsNullOrEmpty(apiToken)) http.DefaultRequestHeaders.Add("dapr-api-token", apiToken);
        return http;
    }

    /// <summary>
    /// What a failed call to the sidecar throws: an <see cref="HttpRequestException"/> with the status code and daprd's
    /// error (its first <see cref="MaxErrorChars"/> characters), which the loops take for a sidecar briefly away and retry.
    /// </summary>
    public static async Task<HttpRequestException> FailureAsync(HttpResponseMessage response, string what, CancellationToken cancellationToken)
    {
        string body;
        try
        {
            using var stream = await response.Content.ReadAsStreamAsync(cancellationToken);
            var buffer = new char[MaxErrorChars];
            using var reader = new StreamReader(stream);
            body = new string(buffer, 0, await reader.ReadBlockAsync(buffer, cancellationToken));
        }
        catch (Exception ex) when (ex is IOException or HttpRequestException)
        {
            body = "(no answer body: " + ex.Message + ")";
        }
        return new HttpRequestException($"the sidecar answered {(int)response.StatusCode} ({response.StatusCode}) to a {what}: {body}", null, response.StatusCode);
    }

}
