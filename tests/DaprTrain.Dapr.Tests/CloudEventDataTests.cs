using System.Text;

namespace DaprTrain.Dapr.Tests;

/// <summary>
/// The subscription routes' reading of data_base64 (issue 16 made it decode into an array of the exact length, not zeroed
/// first): every length's padding, JSON escapes inside the base64, and what daprd never writes refused whole.
/// </summary>
public class CloudEventDataTests
{
    private static byte[] Event(string base64) =>
        Encoding.UTF8.GetBytes($$"""{"id":"e-1","specversion":"1.0","datacontenttype":"application/octet-stream","data_base64":"{{base64}}"}""");

    private static byte[]? Read(byte[] body, out string? problem) =>
        CloudEventData.Read(body, CloudEventData.CloudEventContentType, maxDataBytes: 1024, out problem);

    [Fact]
    public void Every_length_comes_back_exactly_whatever_its_padding()
    {
        var random = new Random(7);
        for (int length = 0; length <= 64; length++)
        {
            var data = new byte[length];
            random.NextBytes(data);
            var read = Read(Event(Convert.ToBase64String(data)), out var problem);
            problem.Should().BeNull($"{length} bytes are valid base64");
            read.Should().Equal(data, $"{length} bytes ({(3 - length % 3) % 3} of padding) decode to themselves, not a byte more");
        }
    }

    [Fact]
    public void Slashes_escaped_by_the_JSON_writer_are_unescaped_before_decoding()
    {
        var data = new byte[] { 0xff, 0xff, 0xff, 0xfb, 0xef, 0xbe };
        string base64 = Convert.ToBase64String(data);
        base64.Should().Contain("/").And.Contain("+");
        Read(Event(base64.Replace("/", "\\/", StringComparison.Ordinal)), out var problem).Should().Equal(data);
        problem.Should().BeNull();
    }

    [Theory]
    [InlineData("AAEC AwQF", "not canonical base64")] // white space, which the decoder would skip
    [InlineData("AAECAwQ", "not a multiple of 4")]
    [InlineData("A===", "not valid base64")]
    [InlineData("AAAA====", "not valid base64")]
    [InlineData("AAE=AwQF", "not valid base64")] // padding inside
    [InlineData("@@@@", "not valid base64")]
    public void Base64_daprd_never_writes_is_refused_with_the_reason(string base64, string reason)
    {
        Read(Event(base64), out var problem).Should().BeNull();
        problem.Should().Contain(reason);
    }

    [Fact]
    public void An_empty_string_is_no_bytes_and_a_JSON_escape_is_read_as_its_character()
    {
        Read(Event(""), out var empty).Should().BeEmpty();
        empty.Should().BeNull();
        // "\u0041AEC" is "AAEC" once the JSON string is unescaped: 0x00 0x01 0x02.
        Read(Event("\\u0041AEC"), out var problem).Should().Equal(0, 1, 2);
        problem.Should().BeNull();
    }

    [Fact]
    public void Data_over_the_chunk_size_is_refused_before_it_is_decoded()
    {
        var data = new byte[1025];
        Read(Event(Convert.ToBase64String(data)), out var problem).Should().BeNull();
        problem.Should().Contain("1024-byte chunk size");
    }
}
