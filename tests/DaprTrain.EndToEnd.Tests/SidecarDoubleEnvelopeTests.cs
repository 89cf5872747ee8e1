using System.Text;
using System.Text.Json;
using DaprTrain.SidecarDouble;

namespace DaprTrain.EndToEnd.Tests;

/// <summary>
/// The CloudEvent the double POSTs, as daprd writes it (issue 16 made the double write it once in UTF-8 for all of a
/// message's deliveries): binary data as data_base64, unescaped as Go's encoding/json leaves '+' and '/', JSON data as data.
/// </summary>
public sealed class SidecarDoubleEnvelopeTests
{
    [Fact]
    public void Binary_data_is_data_base64_that_decodes_to_the_published_bytes_with_nothing_escaped()
    {
        // 0xfb 0xff 0xbf encodes to "+/+/": System.Text.Json's default encoder escapes '+', daprd's Go encoder does not.
        var data = new byte[] { 0xfb, 0xff, 0xbf, 0xfb, 0xff, 0xbf, 1, 2 };
        byte[] envelope = Broker.EnvelopeUtf8("worker-1", "gradients", "gradients", data, "application/octet-stream");

        string text = Encoding.UTF8.GetString(envelope);
        text.Should().Contain("\"data_base64\":\"" + Convert.ToBase64String(data) + "\"", "daprd's Go encoder escapes neither '+' nor '/'");
        using var json = JsonDocument.Parse(envelope);
        json.RootElement.GetProperty("data_base64").GetBytesFromBase64().Should().Equal(data);
        json.RootElement.GetProperty("source").GetString().Should().Be("worker-1");
        json.RootElement.GetProperty("datacontenttype").GetString().Should().Be("application/octet-stream");
        json.RootElement.TryGetProperty("data", out _).Should().BeFalse("binary data goes in data_base64 only");
    }

    [Fact]
    public void JSON_data_is_embedded_as_data_and_each_event_has_its_own_id()
    {
        var data = JsonSerializer.SerializeToUtf8Bytes(new { label = "a<b" });
        using var first = JsonDocument.Parse(Broker.EnvelopeUtf8("publisher", "gradients", "progress", data, "application/json"));
        using var second = JsonDocument.Parse(Broker.EnvelopeUtf8("publisher", "gradients", "progress", data, "application/json"));
        first.RootElement.GetProperty("data").GetProperty("label").GetString().Should().Be("a<b");
        first.RootElement.TryGetProperty("data_base64", out _).Should().BeFalse();
        first.RootElement.GetProperty("id").GetString().Should().NotBe(second.RootElement.GetProperty("id").GetString());
        Broker.Envelope("publisher", "gradients", "progress", data, "application/json").Should().Contain("\"topic\":\"progress\"");
    }
}
