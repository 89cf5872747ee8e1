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
    /// Sends <paramref name="request"/> and answers the sidecar's response when it succeeded. A failure answer throws
    /// <see cref="FailureAsync"/>'s exception (its body read no further than <see cref="MaxErrorChars"/>), and a sidecar that
    /// does not answer within the client's timeout a <see cref="TimeoutException"/>: both are what the loops take for a sidecar
    /// briefly away and retry (HttpClient's own TaskCanceledException is not, and would stop the service).
    /// </summary>
    public static async Task<HttpResponseMessage> SendAsync(HttpClient http, HttpRequestMessage request, string what, CancellationToken cancellationToken)
    {
        HttpResponseMessage response;
        try
        {
            response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        }
        catch (OperationCanceledException ex) when (!cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"the sidecar did not answer a {what} within {http.Timeout.TotalSeconds:0} s", ex);
        }
        if (response.IsSuccessStatusCode) return response;
        using (response) throw await FailureAsync(response, what, cancellationToken);
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
