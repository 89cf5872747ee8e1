using System.Text.Json;

namespace DaprTrain.Serving;

/// <summary>
/// The two shapes a prediction request may take, read and checked before the model sees anything:
/// JSON <c>{"images": [[784 pixels], ...]}</c>, or <c>application/octet-stream</c> with N x 784 bytes
/// (one unsigned byte per pixel, as in MNIST's IDX files). Each problem is named with where it is.
/// </summary>
public static class PredictionRequest
{
    public const int PixelsPerImage = 28 * 28;

    public sealed record Parsed(float[]? Pixels, string? Problem, int StatusCode = StatusCodes.Status400BadRequest)
    {
        public static Parsed Fail(string problem, int statusCode = StatusCodes.Status400BadRequest) => new(null, problem, statusCode);
    }

    public static async Task<Parsed> ReadAsync(HttpRequest request, int maxImages, CancellationToken cancellationToken)
    {
        string? mediaType = request.ContentType?.Split(';')[0].Trim();
        if (string.Equals(mediaType, "application/json", StringComparison.OrdinalIgnoreCase)) return await ReadJsonAsync(request.Body, maxImages, cancellationToken);
        if (string.Equals(mediaType, "application/octet-stream", StringComparison.OrdinalIgnoreCase)) return await ReadBytesAsync(request.Body, maxImages, cancellationToken);
        return Parsed.Fail($"content type '{request.ContentType ?? "(none)"}' is not supported: send application/json ({{\"images\": [[784 pixels], ...]}}) or application/octet-stream (N x 784 bytes)",
            StatusCodes.Status415UnsupportedMediaType);
    }

    public static async Task<Parsed> ReadJsonAsync(Stream body, int maxImages, CancellationToken cancellationToken)
    {
        JsonDocument document;
        try
        {
            document = await JsonDocument.ParseAsync(body, cancellationToken: cancellationToken);
        }
        catch (JsonException ex)
        {
            return Parsed.Fail($"the body is not valid JSON: {ex.Message}");
        }
        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("images", out var images))
            {
                return Parsed.Fail("the body must be an object with an 'images' array: {\"images\": [[784 pixels], ...]}");
            }
            if (images.ValueKind != JsonValueKind.Array) return Parsed.Fail($"'images' is a {images.ValueKind}, not an array of images");
            int count = images.GetArrayLength();
            if (count == 0) return Parsed.Fail("'images' is empty");
            if (count > maxImages) return Parsed.Fail($"{count} images exceed Serving:MaxImagesPerRequest ({maxImages}); send them in smaller batches");

            var pixels = new float[count * PixelsPerImage];
            int i = 0;
            foreach (var image in images.EnumerateArray())
            {
                if (image.ValueKind != JsonValueKind.Array) return Parsed.Fail($"images[{i}] is a {image.ValueKind}, not an array of pixels");
                int length = image.GetArrayLength();
                if (length != PixelsPerImage) return Parsed.Fail($"images[{i}] has {length} values; an image is 28 x 28 = {PixelsPerImage} pixels");
                int p = 0;
                foreach (var value in image.EnumerateArray())
                {
                    if (value.ValueKind != JsonValueKind.Number) return Parsed.Fail($"images[{i}][{p}] is a {value.ValueKind}, not a number");
                    if (!value.TryGetDouble(out double pixel) || pixel is < 0 or > 255) return Parsed.Fail($"images[{i}][{p}] is {value.GetRawText()}; pixels are 0..255");
                    pixels[i * PixelsPerImage + p++] = (float)pixel;
                }
                i++;
            }
            return new Parsed(pixels, null);
        }
    }

    public static async Task<Parsed> ReadBytesAsync(Stream body, int maxImages, CancellationToken cancellationToken)
    {
        long limit = (long)maxImages * PixelsPerImage;
        using var buffer = new MemoryStream();
        var block = new byte[81920];
        int read;
        while ((read = await body.ReadAsync(block, cancellationToken)) > 0)
        {
            if (buffer.Length + read > limit) return Parsed.Fail($"more than Serving:MaxImagesPerRequest ({maxImages}) images of {PixelsPerImage} bytes; send them in smaller batches");
            buffer.Write(block, 0, read);
        }
        if (buffer.Length == 0) return Parsed.Fail("the body is empty; send N x 784 bytes, one per pixel");
        if (buffer.Length % PixelsPerImage != 0) return Parsed.Fail($"{buffer.Length} bytes are not a whole number of 28 x 28 images ({PixelsPerImage} bytes each)");
        var bytes = buffer.GetBuffer().AsSpan(0, (int)buffer.Length);
        var pixels = new float[bytes.Length];
        for (int k = 0; k < bytes.Length; k++) pixels[k] = bytes[k];
        return new Parsed(pixels, null);
    }
}
