using System.Buffers;
using System.IO.Pipelines;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http.Features;

namespace DaprTrain.Serving;

/// <summary>
/// The two shapes a prediction request may take, read and checked before the model sees anything:
/// JSON <c>{"images": [[784 pixels], ...]}</c>, or <c>application/octet-stream</c> with N x 784 bytes
/// (one unsigned byte per pixel, as in MNIST's IDX files). Each problem is named with where it is.
/// Bodies are read as a stream: what the server holds of a request is its pixels (at most
/// Serving:MaxImagesPerRequest x 784 floats) and one buffer of its body, whatever the body is; a body larger than
/// the images can need is refused with 413, and too many images or pixels are refused as soon as they are seen.
/// </summary>
public static class PredictionRequest
{
    public const int PixelsPerImage = 28 * 28;

    /// <summary>The longest single JSON token (a number, a string, a run of whitespace) a body may hold.</summary>
    public const int MaxTokenBytes = 64 * 1024;

    public sealed record Parsed(float[]? Pixels, string? Problem, int StatusCode = StatusCodes.Status400BadRequest)
    {
        public static Parsed Fail(string problem, int statusCode = StatusCodes.Status400BadRequest) => new(null, problem, statusCode);
    }

    public static async Task<Parsed> ReadAsync(HttpRequest request, ServingOptions options, CancellationToken cancellationToken)
    {
        string? mediaType = request.ContentType?.Split(';')[0].Trim();
        bool json = string.Equals(mediaType, "application/json", StringComparison.OrdinalIgnoreCase);
        if (!json && !string.Equals(mediaType, "application/octet-stream", StringComparison.OrdinalIgnoreCase))
        {
            return Parsed.Fail($"content type '{request.ContentType ?? "(none)"}' is not supported: send application/json ({{\"images\": [[784 pixels], ...]}}) or application/octet-stream (N x 784 bytes)",
                StatusCodes.Status415UnsupportedMediaType);
        }
        long limit = json ? options.MaxJsonBodyBytes : options.MaxRawBodyBytes;
        var tooLarge = TooLarge(json, limit, options.MaxImagesPerRequest);
        if (request.ContentLength > limit) return tooLarge;
        // Kestrel enforces it too (for bodies without a Content-Length), unless the body has been read already.
        var sizeFeature = request.HttpContext.Features.Get<IHttpMaxRequestBodySizeFeature>();
        if (sizeFeature is { IsReadOnly: false }) sizeFeature.MaxRequestBodySize = limit;
        try
        {
            return json
                ? await ReadJsonAsync(request.BodyReader, options.MaxImagesPerRequest, limit, cancellationToken)
                : await ReadBytesAsync(request.BodyReader, options.MaxImagesPerRequest, cancellationToken);
        }
        catch (BadHttpRequestException ex) when (ex.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return tooLarge;
        }
    }

    private static Parsed TooLarge(bool json, long limit, int maxImages) => Parsed.Fail(json
        ? $"the body is larger than {limit:D} bytes, the most Serving:MaxImagesPerRequest ({maxImages}) images can need as JSON; send them in smaller batches"
        : $"the body is larger than {limit:D} bytes, Serving:MaxImagesPerRequest ({maxImages}) images of {PixelsPerImage} bytes; send them in smaller batches",
        StatusCodes.Status413PayloadTooLarge);

    public static async Task<Parsed> ReadJsonAsync(PipeReader body, int maxImages, long maxBytes, CancellationToken cancellationToken)
    {
        var parser = new JsonImages(maxImages);
        long consumedBefore = 0;
        while (true)
        {
            ReadResult result = await body.ReadAsync(cancellationToken);
            var buffer = result.Buffer;
            if (consumedBefore + buffer.Length > maxBytes)
            {
                body.AdvanceTo(buffer.End);
                return TooLarge(json: true, maxBytes, maxImages);
            }
            Parsed? outcome;
            long consumed;
            try
            {
                outcome = parser.Feed(buffer, result.IsCompleted, out consumed);
            }
            catch (JsonException ex)
            {
                outcome = Parsed.Fail($"the body is not valid JSON: {ex.Message}");
                consumed = buffer.Length;
            }
            if (outcome is null && buffer.Length - consumed > MaxTokenBytes)
            {
                outcome = Parsed.Fail($"the body holds a single value or run of whitespace longer than {MaxTokenBytes} bytes");
            }
            if (outcome is not null)
            {
                body.AdvanceTo(buffer.End);
                return outcome;
            }
            body.AdvanceTo(buffer.GetPosition(consumed), buffer.End);
            consumedBefore += consumed;
        }
    }

    public static async Task<Parsed> ReadBytesAsync(PipeReader body, int maxImages, CancellationToken cancellationToken)
    {
        long limit = (long)maxImages * PixelsPerImage;
        var pixels = new Pixels(maxImages);
        while (true)
        {
            ReadResult result = await body.ReadAsync(cancellationToken);
            var buffer = result.Buffer;
            if (pixels.Count + buffer.Length > limit)
            {
                body.AdvanceTo(buffer.End);
                return TooLarge(json: false, limit, maxImages);
            }
            foreach (var segment in buffer) pixels.Add(segment.Span);
            body.AdvanceTo(buffer.End);
            if (result.IsCompleted) break;
        }
        if (pixels.Count == 0) return Parsed.Fail("the body is empty; send N x 784 bytes, one per pixel");
        if (pixels.Count % PixelsPerImage != 0) return Parsed.Fail($"{pixels.Count} bytes are not a whole number of 28 x 28 images ({PixelsPerImage} bytes each)");
        return new Parsed(pixels.ToArray(), null);
    }

    /// <summary>Pixels as they arrive, in an array that grows (by doubling) up to the most the request may carry.</summary>
    private sealed class Pixels(int maxImages)
    {
        private float[] _values = new float[Math.Min(maxImages, 4) * PixelsPerImage];

        public int Count { get; private set; }

        public void Reserve(int count)
        {
            if (count <= _values.Length) return;
            int capacity = (int)Math.Min((long)maxImages * PixelsPerImage, Math.Max(count, 2L * _values.Length));
            Array.Resize(ref _values, capacity);
        }

        public void Add(float value) => _values[Count++] = value;

        public void Add(ReadOnlySpan<byte> bytes)
        {
            Reserve(Count + bytes.Length);
            foreach (byte b in bytes) _values[Count++] = b;
        }

        public float[] ToArray() => Count == _values.Length ? _values : _values.AsSpan(0, Count).ToArray();
    }

    /// <summary>
    /// <c>{"images": [[784 numbers], ...]}</c> read token by token with <see cref="Utf8JsonReader"/> as the body arrives;
    /// other properties of the object are skipped.
    /// </summary>
    private sealed class JsonImages(int maxImages)
    {
        private enum Expect { Root, Property, Images, Image, Pixel, SkipValue, SkipNested, End }

        private readonly Pixels _pixels = new(maxImages);
        private JsonReaderState _state;
        private Expect _expect = Expect.Root;
        private int _skipDepth;
        private int _image;
        private int _pixel;
        private bool _sawImages;

        /// <summary>Reads what <paramref name="buffer"/> holds; an outcome once the request is known good or bad, else null.</summary>
        public Parsed? Feed(ReadOnlySequence<byte> buffer, bool isFinalBlock, out long consumed)
        {
            if (_expect == Expect.End) return AfterEnd(buffer, isFinalBlock, out consumed);
            var reader = new Utf8JsonReader(buffer, isFinalBlock, _state);
            while (reader.Read())
            {
                var outcome = Token(ref reader);
                if (outcome is not null)
                {
                    consumed = reader.BytesConsumed;
                    return outcome;
                }
                if (_expect == Expect.End)
                {
                    consumed = reader.BytesConsumed;
                    return AfterEnd(buffer.Slice(consumed), isFinalBlock, out long after) ?? Consumed(consumed + after, out consumed);
                }
            }
            consumed = reader.BytesConsumed;
            _state = reader.CurrentState;
            // Read() ends a final block only at the end of a whole document (an incomplete one throws).
            return isFinalBlock ? Parsed.Fail("the body must be an object with an 'images' array: {\"images\": [[784 pixels], ...]}") : null;
        }

        private static Parsed? Consumed(long value, out long consumed)
        {
            consumed = value;
            return null;
        }

        /// <summary>After the object only whitespace may follow.</summary>
        private Parsed? AfterEnd(ReadOnlySequence<byte> rest, bool isFinalBlock, out long consumed)
        {
            consumed = rest.Length;
            foreach (var segment in rest)
            {
                foreach (byte b in segment.Span)
                {
                    if (b is not ((byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n')) return Parsed.Fail("the body is not valid JSON: something follows the object");
                }
            }
            return isFinalBlock ? new Parsed(_pixels.ToArray(), null) : null;
        }

        private Parsed? Token(ref Utf8JsonReader reader)
        {
            var token = reader.TokenType;
            switch (_expect)
            {
                case Expect.Root:
                    if (token != JsonTokenType.StartObject) return NotAnObject();
                    _expect = Expect.Property;
                    return null;
                case Expect.Property:
                    if (token == JsonTokenType.EndObject)
                    {
                        if (!_sawImages) return NotAnObject();
                        _expect = Expect.End;
                        return null;
                    }
                    if (reader.ValueTextEquals("images"u8))
                    {
                        if (_sawImages) return Parsed.Fail("'images' appears more than once");
                        _sawImages = true;
                        _expect = Expect.Images;
                    }
                    else
                    {
                        _expect = Expect.SkipValue;
                    }
                    return null;
                case Expect.SkipValue:
                    if (token is JsonTokenType.StartObject or JsonTokenType.StartArray)
                    {
                        _skipDepth = reader.CurrentDepth;
                        _expect = Expect.SkipNested;
                    }
                    else
                    {
                        _expect = Expect.Property;
                    }
                    return null;
                case Expect.SkipNested:
                    if (token is JsonTokenType.EndObject or JsonTokenType.EndArray && reader.CurrentDepth == _skipDepth) _expect = Expect.Property;
                    return null;
                case Expect.Images:
                    if (token != JsonTokenType.StartArray) return Parsed.Fail($"'images' is a {Kind(token)}, not an array of images");
                    _expect = Expect.Image;
                    return null;
                case Expect.Image:
                    if (token == JsonTokenType.EndArray)
                    {
                        if (_image == 0) return Parsed.Fail("'images' is empty");
                        _expect = Expect.Property;
                        return null;
                    }
                    if (token != JsonTokenType.StartArray) return Parsed.Fail($"images[{_image}] is a {Kind(token)}, not an array of pixels");
                    if (_image == maxImages) return Parsed.Fail($"more than Serving:MaxImagesPerRequest ({maxImages}) images; send them in smaller batches");
                    _pixels.Reserve((_image + 1) * PixelsPerImage);
                    _pixel = 0;
                    _expect = Expect.Pixel;
                    return null;
                case Expect.Pixel:
                    if (token == JsonTokenType.EndArray)
                    {
                        if (_pixel != PixelsPerImage) return Parsed.Fail($"images[{_image}] has {_pixel} values; an image is 28 x 28 = {PixelsPerImage} pixels");
                        _image++;
                        _expect = Expect.Image;
                        return null;
                    }
                    if (token != JsonTokenType.Number) return Parsed.Fail($"images[{_image}][{_pixel}] is a {Kind(token)}, not a number");
                    if (_pixel == PixelsPerImage) return Parsed.Fail($"images[{_image}] has more than {PixelsPerImage} values; an image is 28 x 28 = {PixelsPerImage} pixels");
                    if (!reader.TryGetDouble(out double pixel) || pixel is < 0 or > 255) return Parsed.Fail($"images[{_image}][{_pixel}] is {Text(ref reader)}; pixels are 0..255");
                    _pixels.Add((float)pixel);
                    _pixel++;
                    return null;
                default:
                    throw new InvalidOperationException($"unexpected parser state {_expect}");
            }
        }

        private static Parsed NotAnObject() => Parsed.Fail("the body must be an object with an 'images' array: {\"images\": [[784 pixels], ...]}");

        /// <summary>The names JsonValueKind gives these values.</summary>
        private static string Kind(JsonTokenType token) => token switch
        {
            JsonTokenType.StartObject => "Object",
            JsonTokenType.StartArray => "Array",
            _ => token.ToString(),
        };

        /// <summary>A number's text as sent, cut short if it is long: a problem does not echo a megabyte back.</summary>
        private static string Text(ref Utf8JsonReader reader)
        {
            const int Shown = 32;
            byte[] raw = reader.HasValueSequence ? reader.ValueSequence.ToArray() : reader.ValueSpan.ToArray();
            return raw.Length <= Shown ? Encoding.UTF8.GetString(raw) : $"{Encoding.UTF8.GetString(raw, 0, Shown)}... ({raw.Length} characters)";
        }
    }
}
