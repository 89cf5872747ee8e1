using System.ComponentModel.DataAnnotations;

namespace DaprTrain.Serving;

/// <summary>
/// Bound from the "Serving" section (appsettings, SERVING__MODELPATH, or --Serving:ModelPath on the command line) and
/// validated at start: a value out of range stops the server with the option's name. Every limit the server sets on
/// its clients is here; the body limits are derived from <see cref="MaxImagesPerRequest"/>.
/// </summary>
public sealed class ServingOptions
{
    public const string Section = "Serving";

    /// <summary>
    /// The longest number text a legitimate pixel (0..255) takes, in bytes: the shortest round-trip form of a double,
    /// such as 0.30000000000000004 or 1.2345678901234567E-05, with room to spare.
    /// </summary>
    public const int MaxPixelTextBytes = 24;

    /// <summary>What one pixel may take in a JSON body: its number, a comma and a space.</summary>
    public const int JsonBytesPerPixel = MaxPixelTextBytes + 2;

    /// <summary>What a JSON body may carry besides the pixels: the brackets, line breaks and indentation of each image.</summary>
    public const int JsonBytesPerImage = 64;

    /// <summary>Slack for the object around the images (other properties, whitespace).</summary>
    public const int JsonSlackBytes = 4096;

    /// <summary>The .onnx file written by <c>daprtrain train --export-onnx</c>.</summary>
    [Required(ErrorMessage = "Serving:ModelPath is required: the .onnx file written by 'daprtrain train --export-onnx'.")]
    public string ModelPath { get; set; } = "";

    /// <summary>Images one request may carry; a larger batch is refused rather than queued.</summary>
    [Range(1, 65_536, ErrorMessage = "Serving:MaxImagesPerRequest must be between 1 and 65536.")]
    public int MaxImagesPerRequest { get; set; } = 256;

    /// <summary>Prediction requests served at once (ASP.NET Core concurrency limiter on /v1/predict).</summary>
    [Range(1, 4096, ErrorMessage = "Serving:MaxConcurrentPredictions must be between 1 and 4096.")]
    public int MaxConcurrentPredictions { get; set; } = 8;

    /// <summary>Prediction requests that wait for a turn; one more gets 429 with Retry-After.</summary>
    [Range(0, 65_536, ErrorMessage = "Serving:PredictionQueueLength must be between 0 and 65536.")]
    public int PredictionQueueLength { get; set; } = 64;

    /// <summary>The Retry-After (seconds) of a 429.</summary>
    [Range(1, 3600, ErrorMessage = "Serving:RetryAfterSeconds must be between 1 and 3600.")]
    public int RetryAfterSeconds { get; set; } = 1;

    /// <summary>The time a prediction request's body may take to arrive, however fast it trickles; then 408.</summary>
    [Range(1, 3600, ErrorMessage = "Serving:RequestBodyTimeoutSeconds must be between 1 and 3600.")]
    public int RequestBodyTimeoutSeconds { get; set; } = 30;

    /// <summary>Open connections (Kestrel Limits.MaxConcurrentConnections); more are refused by Kestrel.</summary>
    [Range(1, 1_000_000, ErrorMessage = "Serving:MaxConcurrentConnections must be between 1 and 1000000.")]
    public int MaxConcurrentConnections { get; set; } = 256;

    /// <summary>The slowest a request body may arrive, in bytes per second, after the grace period (Kestrel MinRequestBodyDataRate).</summary>
    [Range(1, 1_000_000_000, ErrorMessage = "Serving:MinRequestBodyBytesPerSecond must be between 1 and 1000000000.")]
    public int MinRequestBodyBytesPerSecond { get; set; } = 4096;

    /// <summary>How long a body may arrive slower than <see cref="MinRequestBodyBytesPerSecond"/> before the connection is closed.</summary>
    [Range(2, 600, ErrorMessage = "Serving:MinRequestBodyGraceSeconds must be between 2 and 600 (Kestrel wants more than 1).")]
    public int MinRequestBodyGraceSeconds { get; set; } = 5;

    /// <summary>The time the request line and headers may take to arrive (Kestrel RequestHeadersTimeout).</summary>
    [Range(1, 600, ErrorMessage = "Serving:RequestHeadersTimeoutSeconds must be between 1 and 600.")]
    public int RequestHeadersTimeoutSeconds { get; set; } = 10;

    /// <summary>
    /// What Kestrel buffers of a request per connection before the app reads it (Kestrel MaxRequestBufferSize), so that
    /// requests waiting in the queue hold this much each, not a megabyte.
    /// </summary>
    [Range(4096, 16 * 1024 * 1024, ErrorMessage = "Serving:MaxRequestBufferBytes must be between 4096 and 16777216.")]
    public int MaxRequestBufferBytes { get; set; } = 64 * 1024;

    /// <summary>The largest application/octet-stream body: exactly <see cref="MaxImagesPerRequest"/> x 784 bytes.</summary>
    public long MaxRawBodyBytes => (long)MaxImagesPerRequest * PredictionRequest.PixelsPerImage;

    /// <summary>
    /// The largest application/json body: <see cref="MaxImagesPerRequest"/> x 784 pixels x <see cref="JsonBytesPerPixel"/>,
    /// plus <see cref="JsonBytesPerImage"/> an image and <see cref="JsonSlackBytes"/> (5.2 MB for 256 images).
    /// </summary>
    public long MaxJsonBodyBytes => (long)MaxImagesPerRequest * (PredictionRequest.PixelsPerImage * JsonBytesPerPixel + JsonBytesPerImage) + JsonSlackBytes;
}
