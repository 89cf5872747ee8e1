using System.Buffers;
using System.Buffers.Text;
using System.Text.Json;

namespace DaprTrain.Dapr;

/// <summary>
/// The binary payload of what daprd POSTs to a subscription route, read from the raw body: a CloudEvent
/// (<c>application/cloudevents+json</c>) whose <c>data_base64</c> holds the chunk, or the chunk itself
/// (<c>application/octet-stream</c>, a subscription with <c>rawPayload</c>). Read here rather than by Dapr.AspNetCore's
/// UseCloudEvents because that middleware buffers any body Kestrel allows (30 MB) and throws on a body that is not JSON
/// or on bad base64, which ASP.NET answers with 500 and daprd treats as "retry": poison would come back for ever.
/// Every problem here is a reason to DROP, and nothing larger than a chunk's envelope is ever held.
/// </summary>
public static class CloudEventData
{
    public const string CloudEventContentType = "application/cloudevents+json";
    public const string RawContentType = "application/octet-stream";

    /// <summary>What an envelope holds besides data_base64 (id, source, topic, trace context, time...), generously.</summary>
    public const int EnvelopeOverheadBytes = 16 * 1024;

    /// <summary>The largest body worth reading for a chunk of <paramref name="maxChunkBytes"/>: its base64 plus the envelope.</summary>
    public static int MaxBodyBytes(int maxChunkBytes) => Base64.GetMaxEncodedToUtf8Length(maxChunkBytes) + EnvelopeOverheadBytes;

    /// <summary>The payload of <paramref name="body"/>, at most <paramref name="maxDataBytes"/> long, or null and why not.</summary>
    public static byte[]? Read(ReadOnlySpan<byte> body, string? contentType, int maxDataBytes, out string? problem) =>
        Read(body, contentType, maxDataBytes, out problem, out _);

    /// <param name="traceParent">The W3C traceparent daprd put in the CloudEvent (the publisher's trace), when there is one.</param>
    public static byte[]? Read(ReadOnlySpan<byte> body, string? contentType, int maxDataBytes, out string? problem, out string? traceParent) =>
        Read(body, contentType, maxDataBytes, out problem, out traceParent, out _);

    /// <param name="eventId">The CloudEvent's id (at most 128 characters), which a dead letter of this event keeps: logged with a drop's reason.</param>
    public static byte[]? Read(ReadOnlySpan<byte> body, string? contentType, int maxDataBytes, out string? problem, out string? traceParent, out string? eventId)
    {
        problem = null;
        traceParent = null;
        eventId = null;
        string mediaType = (contentType ?? "").Split(';', 2)[0].Trim();
        if (mediaType.Equals(RawContentType, StringComparison.OrdinalIgnoreCase))
        {
            if (body.Length <= maxDataBytes) return body.ToArray();
            problem = $"raw payload of {body.Length} bytes exceeds the {maxDataBytes}-byte chunk size";
            return null;
        }
        if (!mediaType.Equals(CloudEventContentType, StringComparison.OrdinalIgnoreCase))
        {
            problem = $"unsupported content type '{Printable(mediaType)}' (expected {CloudEventContentType} or {RawContentType})";
            return null;
        }
        try
        {
            return ReadEnvelope(body, maxDataBytes, out problem, out traceParent, out eventId);
        }
        catch (JsonException ex)
        {
            problem = $"the CloudEvent is not valid JSON ({ex.Message.Split('.')[0]})";
            return null;
        }
        catch (InvalidOperationException)
        {
            // Utf8JsonReader.GetString throws this, not a JsonException, for a string that is not valid UTF-8.
            problem = "the CloudEvent holds a string that is not valid UTF-8";
            return null;
        }
    }

    private static byte[]? ReadEnvelope(ReadOnlySpan<byte> body, int maxDataBytes, out string? problem, out string? traceParent, out string? eventId)
    {
        traceParent = null;
        eventId = null;
        var reader = new Utf8JsonReader(body, new JsonReaderOptions { MaxDepth = 16 });
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
        {
            problem = "the CloudEvent is not a JSON object";
            return null;
        }
        byte[]? data = null;
        bool jsonData = false;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            bool isBase64 = reader.ValueTextEquals("data_base64"u8);
            bool isData = !isBase64 && reader.ValueTextEquals("data"u8);
            bool isTrace = reader.ValueTextEquals("traceparent"u8);
            bool isId = reader.ValueTextEquals("id"u8);
            reader.Read();
            if (isTrace && reader.TokenType == JsonTokenType.String && reader.ValueSpan.Length <= 128)
            {
                traceParent = reader.GetString();
            }
            else if (isId && reader.TokenType == JsonTokenType.String && reader.ValueSpan.Length <= 128)
            {
                eventId = Printable(reader.GetString()!);
            }
            else if (isBase64)
            {
                if (reader.TokenType != JsonTokenType.String) { problem = "data_base64 is not a string"; return null; }
                if (data is not null) { problem = "data_base64 appears twice"; return null; }
                data = DecodeBase64(ref reader, maxDataBytes, out problem);
                if (data is null) return null;
            }
            else
            {
                jsonData |= isData && reader.TokenType != JsonTokenType.Null;
                reader.Skip();
            }
        }
        if (reader.TokenType != JsonTokenType.EndObject) { problem = "the CloudEvent is not a JSON object"; return null; }
        if (data is not null)
        {
            problem = null;
            return data;
        }
        problem = jsonData
            ? "the event carries JSON data; this topic takes binary messages (data_base64)"
            : "the CloudEvent has no data_base64";
        return null;
    }

    private static byte[]? DecodeBase64(ref Utf8JsonReader reader, int maxDataBytes, out string? problem)
    {
        problem = null;
        int length = reader.HasValueSequence ? checked((int)reader.ValueSequence.Length) : reader.ValueSpan.Length;
        // Every 4 characters decode to at most 3 bytes: refused before anything is decoded or copied.
        if ((long)length / 4 * 3 > maxDataBytes + 2L)
        {
            problem = $"data_base64 of {length} characters exceeds the {maxDataBytes}-byte chunk size";
            return null;
        }
        byte[] text = ArrayPool<byte>.Shared.Rent(Math.Max(length, 1));
        try
        {
            // JSON may escape characters of the string ("\/" for "/"): unescaped first, which never lengthens it.
            int written = reader.CopyString(text);
            var base64 = text.AsSpan(0, written);
            // Decoded straight into an array of the exact length, not zeroed first (it is overwritten whole): a gradient's
            // 400 kB were zeroed, decoded, then copied again to cut the padding's bytes off (issue 16).
            // The decoder skips white space, which daprd never writes: refused here, so that the length below is the data's.
            if (base64.IndexOfAny(" \t\r\n"u8) >= 0)
            {
                problem = "data_base64 is not canonical base64 (it holds white space)";
                return null;
            }
            if (written % 4 != 0)
            {
                problem = $"data_base64 is not valid base64 ({written} characters, not a multiple of 4)";
                return null;
            }
            int padding = base64.EndsWith("=="u8) ? 2 : base64.EndsWith("="u8) ? 1 : 0;
            int exact = written / 4 * 3 - padding;
            if (exact > maxDataBytes)
            {
                problem = $"data_base64 decodes to {exact} bytes, over the {maxDataBytes}-byte chunk size";
                return null;
            }
            var decoded = GC.AllocateUninitializedArray<byte>(exact);
            var status = Base64.DecodeFromUtf8(base64, decoded, out int consumed, out int bytes);
            if (status != OperationStatus.Done)
            {
                problem = $"data_base64 is not valid base64 ({status})";
                return null;
            }
            if (consumed != written || bytes != exact)
            {
                problem = $"data_base64 is not canonical base64 ({written} characters decoded to {bytes} bytes)";
                return null;
            }
            return decoded;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(text);
        }
    }

    /// <summary>A header value as it may be logged: control characters escaped, at most 64 characters.</summary>
    private static string Printable(string text)
    {
        var builder = new System.Text.StringBuilder();
        foreach (char c in text.Length > 64 ? text[..64] : text)
        {
            if (char.IsControl(c) || c > '~') builder.Append($"\\u{(int)c:x4}");
            else builder.Append(c);
        }
        return text.Length > 64 ? builder + "..." : builder.ToString();
    }
}
