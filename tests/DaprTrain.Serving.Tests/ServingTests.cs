using System.Net;
using System.Net.Sockets;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using DaprTrain.Cli;
using DaprTrain.Onnx;
using DaprTrain.Training;
using DaprTrain.Training.Data;
using DaprTrain.Training.Parameters;
using DaprTrain.Training.Tests;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Microsoft.AspNetCore.Mvc.Testing;

namespace DaprTrain.Serving.Tests;

/// <summary>One MLP, trained and exported once for the class: the server must answer with that model's classes.</summary>
public sealed class TrainedModel : IDisposable
{
    public TrainedModel()
    {
        TorchRuntime.EnsureInitialised(null);
        var data = TestData.Mnist8k2k;
        using var trainer = new Trainer(new TrainerOptions("mlp", new OptimizerSettings(OptimizerKind.Adam, 1e-3), 64, 5));
        var sampler = new EpochSampler(data.TrainIndices, 64, 5);
        var batch = new long[64];
        for (int i = 0; i < 300; i++) trainer.TrainStep(data.Train, batch.AsSpan(0, sampler.Next(batch)));
        Bytes = OnnxModels.Export(trainer);
        File.WriteAllBytes(Path, Bytes);

        // Raw pixels as a client has them (bytes 0..255), recovered from the normalised held-out features.
        var indices = data.HoldoutIndices.Take(Count).ToArray();
        Pixels = indices.Select(i => data.Holdout.Features.AsSpan((int)i * 784, 784).ToArray()
            .Select(f => (byte)Math.Clamp(MathF.Round((f * Mnist.StandardDeviation + Mnist.Mean) * 255f), 0, 255)).ToArray()).ToArray();
        Labels = indices.Select(i => (int)data.Holdout.Labels[i]).ToArray();
    }

    public const int Count = 64;

    public string Path { get; } = System.IO.Path.Combine(Directory.CreateTempSubdirectory("daprtrain-serving-").FullName, "mlp.onnx");

    public byte[] Bytes { get; }

    public byte[][] Pixels { get; }

    public int[] Labels { get; }

    public void Dispose() => Directory.Delete(System.IO.Path.GetDirectoryName(Path)!, recursive: true);
}

public sealed class ServingTests(TrainedModel model) : IClassFixture<TrainedModel>, IDisposable
{
    private readonly List<IDisposable> _hosts = [];

    public void Dispose()
    {
        foreach (var host in _hosts) host.Dispose();
    }

    private HttpClient Serve(string? modelPath, int maxImages = 256, params (string Key, string Value)[] settings) =>
        Factory(modelPath, maxImages, settings).CreateClient();

    private WebApplicationFactory<ModelHost> Factory(string? modelPath, int maxImages = 256, params (string Key, string Value)[] settings)
    {
        var factory = new WebApplicationFactory<ModelHost>().WithWebHostBuilder(b =>
        {
            if (modelPath is not null) b.UseSetting("Serving:ModelPath", modelPath);
            b.UseSetting("Serving:MaxImagesPerRequest", maxImages.ToString(System.Globalization.CultureInfo.InvariantCulture));
            foreach (var (key, value) in settings) b.UseSetting(key, value);
        });
        _hosts.Add(factory);
        return factory;
    }

    private static async Task<(int[] Labels, float[][] Probabilities)> PredictionsAsync(HttpResponseMessage response)
    {
        response.StatusCode.Should().Be(HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var predictions = json.RootElement.GetProperty("predictions").EnumerateArray().ToList();
        return (predictions.Select(p => p.GetProperty("label").GetInt32()).ToArray(),
            predictions.Select(p => p.GetProperty("probabilities").EnumerateArray().Select(v => v.GetSingle()).ToArray()).ToArray());
    }

    [Fact]
    public async Task Json_and_raw_byte_requests_get_the_exported_models_classes_and_they_are_mostly_right()
    {
        var client = Serve(model.Path);
        var json = await PredictionsAsync(await client.PostAsJsonAsync("/v1/predict", new { images = model.Pixels.Select(p => p.Select(b => (int)b)) }));
        using var bytes = new ByteArrayContent(model.Pixels.SelectMany(p => p).ToArray());
        bytes.Headers.ContentType = new("application/octet-stream");
        var raw = await PredictionsAsync(await client.PostAsync("/v1/predict", bytes));

        using var classifier = new OnnxClassifier(model.Bytes);
        int[] expected = classifier.Classify(model.Pixels.SelectMany(p => p.Select(b => (float)b)).ToArray());
        json.Labels.Should().Equal(expected, "the server answers with the model it was given");
        raw.Labels.Should().Equal(expected);
        json.Probabilities.Should().AllSatisfy(p =>
        {
            p.Should().HaveCount(10);
            p.Sum().Should().BeApproximately(1f, 1e-4f);
        });
        json.Probabilities.Select((p, i) => Array.IndexOf(p, p.Max()) == json.Labels[i]).Should().AllBeEquivalentTo(true);
        double accuracy = json.Labels.Where((label, i) => label == model.Labels[i]).Count() / (double)TrainedModel.Count;
        accuracy.Should().BeGreaterThan(0.8, "a trained model, not a fresh initialisation, is served");
    }

    [Fact]
    public async Task Model_and_health_name_the_served_file_by_its_digest()
    {
        var client = Serve(model.Path);
        string text = await client.GetStringAsync("/v1/model");
        using var info = JsonDocument.Parse(text);
        info.RootElement.GetProperty("file").GetString().Should().Be("mlp.onnx", "the file's name, not where it lies on the server");
        text.Should().NotContain(System.IO.Path.GetDirectoryName(model.Path)!.Replace("\\", "\\\\", StringComparison.Ordinal));
        text.Should().NotContain(System.IO.Path.GetFileName(System.IO.Path.GetDirectoryName(model.Path)!));
        string digest = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(model.Bytes));
        info.RootElement.GetProperty("sha256").GetString().Should().Be(digest);
        info.RootElement.GetProperty("bytes").GetInt64().Should().Be(model.Bytes.Length);
        using var health = JsonDocument.Parse(await client.GetStringAsync("/health"));
        health.RootElement.GetProperty("model").GetString().Should().Be(digest);
    }

    public static TheoryData<string, string, string> BadRequests() => new()
    {
        { "application/json", "{\"images\": [[1, 2, 3]]}", "images[0] has 3 values; an image is 28 x 28 = 784 pixels" },
        { "application/json", Image("300"), "images[0][5] is 300; pixels are 0..255" },
        { "application/json", Image("-1"), "images[0][5] is -1; pixels are 0..255" },
        { "application/json", "{\"images\": [[" + string.Join(",", Enumerable.Repeat("\"x\"", 784)) + "]]}", "images[0][0] is a String, not a number" },
        { "application/json", "{\"images\": [" + Row("1e40") + "]}", "images[0][5] is 1e40; pixels are 0..255" },
        { "application/json", "{\"images\": [\"a picture\"]}", "images[0] is a String, not an array of pixels" },
        { "application/json", "{\"images\": []}", "'images' is empty" },
        { "application/json", "{\"pixels\": []}", "an object with an 'images' array" },
        { "application/json", "{\"images\": [[1, 2", "not valid JSON" },
        { "application/json", "{\"images\": [" + string.Join(",", Enumerable.Repeat(Row("0"), 5)) + "]}", "more than Serving:MaxImagesPerRequest (4) images" },
        { "application/json", "{\"images\": [[" + string.Join(",", Enumerable.Repeat("0", 785)) + "]]}", "images[0] has more than 784 values" },
        { "application/json", "{\"note\": {\"a\": [1, [2]]}, \"images\": [" + Row("256") + "]}", "images[0][5] is 256; pixels are 0..255" },
        { "application/json", "{\"images\": [" + Row("0") + "]} x", "not valid JSON" },
        { "application/json", "", "not valid JSON" },
        { "application/octet-stream", "", "the body is empty" },
        { "application/octet-stream", new string('a', 785), "785 bytes are not a whole number of 28 x 28 images" },
        { "text/plain", "7", "content type 'text/plain; charset=utf-8' is not supported" },
    };

    private static string Row(string fifth) => "[" + string.Join(",", Enumerable.Range(0, 784).Select(i => i == 5 ? fifth : "0")) + "]";

    private static string Image(string fifth) => "{\"images\": [" + Row(fifth) + "]}";

    [Theory]
    [MemberData(nameof(BadRequests))]
    public async Task A_bad_request_is_refused_with_a_problem_that_says_what_was_wrong(string contentType, string body, string problem)
    {
        var client = Serve(model.Path, maxImages: 4);
        using var content = new StringContent(body, Encoding.UTF8);
        content.Headers.ContentType = contentType == "text/plain" ? new("text/plain") { CharSet = "utf-8" } : new(contentType);
        var response = await client.PostAsync("/v1/predict", content);

        response.StatusCode.Should().Be(contentType == "text/plain" ? HttpStatusCode.UnsupportedMediaType : HttpStatusCode.BadRequest);
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        json.RootElement.GetProperty("detail").GetString().Should().Contain(problem);
        // The server is still there and still right after a refusal.
        (await client.GetAsync("/health")).StatusCode.Should().Be(HttpStatusCode.OK);
    }

    [Fact]
    public void A_missing_option_a_missing_file_or_a_file_that_is_no_model_stops_the_service_at_start_with_the_reason()
    {
        var noOption = () => Serve(null);
        noOption.Should().Throw<Exception>().Where(e => e.ToString().Contains("Serving:ModelPath is required"));

        var noFile = () => Serve(System.IO.Path.Combine(System.IO.Path.GetTempPath(), "no-such-model.onnx"));
        noFile.Should().Throw<Exception>().Where(e => e.ToString().Contains("Serving:ModelPath names no existing file"));

        string notAModel = System.IO.Path.Combine(System.IO.Path.GetDirectoryName(model.Path)!, "weights.bin");
        File.WriteAllBytes(notAModel, Encoding.UTF8.GetBytes("these are not the weights you are looking for"));
        var garbage = () => Serve(notAModel);
        garbage.Should().Throw<InvalidDataException>().WithMessage($"Serving:ModelPath '{notAModel}': not a loadable ONNX model*");
    }

    /// <summary>The server on a real Kestrel at a loopback port: TestServer hands a request to the app only once its body has been sent.</summary>
    private Uri OverKestrel(WebApplicationFactory<ModelHost> factory)
    {
        factory.UseKestrel(o => o.Listen(IPAddress.Loopback, 0));
        factory.StartServer();
        return new Uri(factory.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
    }

    private static string Body(int images) => "{\"images\": [" + string.Join(",", Enumerable.Repeat(Row("0"), images)) + "]}";

    /// <summary>
    /// A request whose chunked body sends <paramref name="prefix"/> and then nothing more, over a socket of its own (HttpClient
    /// would not hand back a response before its request body ends); the answer is the response's text once it is complete.
    /// </summary>
    private static async Task<(TcpClient Connection, Task<string> Answer)> StallAsync(Uri address, string prefix)
    {
        var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, address.Port);
        var stream = tcp.GetStream();
        byte[] body = Encoding.UTF8.GetBytes(prefix);
        await stream.WriteAsync(Encoding.ASCII.GetBytes(
            $"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{body.Length:x}\r\n"));
        await stream.WriteAsync(body);
        await stream.WriteAsync("\r\n"u8.ToArray());
        return (tcp, ReadAnswerAsync(stream));
    }

    private static async Task<string> ReadAnswerAsync(NetworkStream stream)
    {
        var text = new StringBuilder();
        var buffer = new byte[4096];
        int read;
        try
        {
            while ((read = await stream.ReadAsync(buffer)) > 0)
            {
                text.Append(Encoding.UTF8.GetString(buffer, 0, read));
                if (text.ToString().EndsWith("\r\n0\r\n\r\n", StringComparison.Ordinal)) break;
            }
        }
        catch (IOException)
        {
        }
        return text.ToString();
    }

    [Fact]
    public async Task A_body_larger_than_the_images_can_need_is_refused_with_413_naming_the_limit()
    {
        var client = Serve(model.Path, maxImages: 4);
        // JSON: 4 x (784 x 26 + 64) + 4096 bytes at most; a valid one-image body padded beyond that is refused unread.
        using var json = new StringContent(Body(1) + new string(' ', 90_000), Encoding.UTF8, "application/json");
        var response = await client.PostAsync("/v1/predict", json);
        response.StatusCode.Should().Be(HttpStatusCode.RequestEntityTooLarge);
        using (var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync()))
        {
            problem.RootElement.GetProperty("detail").GetString().Should().Contain("larger than 85888 bytes").And.Contain("Serving:MaxImagesPerRequest (4)");
        }

        // Raw bytes: exactly 4 x 784.
        using var raw = new ByteArrayContent(new byte[784 * 4 + 1]);
        raw.Headers.ContentType = new("application/octet-stream");
        response = await client.PostAsync("/v1/predict", raw);
        response.StatusCode.Should().Be(HttpStatusCode.RequestEntityTooLarge);
        using (var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync()))
        {
            problem.RootElement.GetProperty("detail").GetString().Should().Contain("larger than 3136 bytes").And.Contain("Serving:MaxImagesPerRequest (4)");
        }
        using var exact = new ByteArrayContent(new byte[784 * 4]);
        exact.Headers.ContentType = new("application/octet-stream");
        (await client.PostAsync("/v1/predict", exact)).StatusCode.Should().Be(HttpStatusCode.OK);
    }

    public static TheoryData<string, string> EndlessBodies() => new()
    {
        { "{\"images\": [" + string.Join(",", Enumerable.Repeat(Row("0"), 5)) + ",", "more than Serving:MaxImagesPerRequest (4) images" },
        { "{\"images\": [[" + string.Join(",", Enumerable.Repeat("0", 800)) + ",", "images[0] has more than 784 values" },
    };

    [Theory]
    [MemberData(nameof(EndlessBodies))]
    public async Task Too_many_images_or_pixels_are_refused_as_soon_as_they_are_seen_not_after_the_whole_body(string prefix, string problem)
    {
        var (connection, answer) = await StallAsync(OverKestrel(Factory(model.Path, maxImages: 4)), prefix);
        using (connection)
        {
            string response = await answer.WaitAsync(TimeSpan.FromSeconds(20));
            response.Should().StartWith("HTTP/1.1 400").And.Contain(problem);
        }
    }

    [Fact]
    public async Task When_the_predictions_and_their_queue_are_full_a_request_gets_429_with_retry_after()
    {
        var address = OverKestrel(Factory(model.Path, 256, ("Serving:MaxConcurrentPredictions", "1"), ("Serving:PredictionQueueLength", "0"), ("Serving:RetryAfterSeconds", "7")));
        using var client = new HttpClient { BaseAddress = address };
        // The one turn is taken by a request whose body stalls.
        var (connection, first) = await StallAsync(address, "{\"images\": [");
        try
        {
            HttpResponseMessage? refused = null;
            for (int attempt = 0; attempt < 100 && refused is null; attempt++)
            {
                // A probe can take the turn before the stalled request's headers are read (seen once in CI, under load): the
                // stalled request is then the one refused, answered at once, and holds nothing. Another one is stalled.
                if (first.IsCompleted)
                {
                    connection.Dispose();
                    (connection, first) = await StallAsync(address, "{\"images\": [");
                }
                var response = await client.PostAsync("/v1/predict", new StringContent(Body(1), Encoding.UTF8, "application/json"));
                if (response.StatusCode == HttpStatusCode.TooManyRequests) refused = response;
                else await Task.Delay(100);
            }
            refused.Should().NotBeNull("one prediction at a time and no queue: a second one while the first reads its body is refused");
            refused!.Headers.RetryAfter!.Delta.Should().Be(TimeSpan.FromSeconds(7));
            using var json = JsonDocument.Parse(await refused.Content.ReadAsStringAsync());
            json.RootElement.GetProperty("detail").GetString().Should().Contain("Serving:MaxConcurrentPredictions");
            (await client.GetAsync("/health")).StatusCode.Should().Be(HttpStatusCode.OK, "health is not rate-limited");

            await connection.GetStream().WriteAsync("0\r\n\r\n"u8.ToArray());
            (await first.WaitAsync(TimeSpan.FromSeconds(20))).Should().StartWith("HTTP/1.1 400", "the stalled body ends unfinished");
        }
        finally
        {
            connection.Dispose();
        }
        var after = await client.PostAsync("/v1/predict", new StringContent(Body(1), Encoding.UTF8, "application/json"));
        after.StatusCode.Should().Be(HttpStatusCode.OK, "the turn is given back");
    }

    [Fact]
    public void Connection_limits_come_from_the_options_and_a_bad_one_stops_the_start()
    {
        var defaults = Factory(model.Path).Services.GetRequiredService<IOptions<KestrelServerOptions>>().Value.Limits;
        defaults.MaxConcurrentConnections.Should().NotBeNull("connections are capped by default");
        defaults.MinRequestBodyDataRate!.BytesPerSecond.Should().BeGreaterThan(300, "a body trickled at 300 B/s is cut off by default");
        defaults.RequestHeadersTimeout.Should().BeLessThan(TimeSpan.FromSeconds(30));
        defaults.MaxRequestBodySize.Should().BeLessThan(30_000_000, "no body larger than 256 images can need as JSON");

        var limits = Factory(model.Path, 256, ("Serving:MaxConcurrentConnections", "100"), ("Serving:MinRequestBodyBytesPerSecond", "2000"),
            ("Serving:MinRequestBodyGraceSeconds", "3"), ("Serving:RequestHeadersTimeoutSeconds", "4"), ("Serving:MaxRequestBufferBytes", "32768"))
            .Services.GetRequiredService<IOptions<KestrelServerOptions>>().Value.Limits;
        limits.MaxConcurrentConnections.Should().Be(100);
        limits.MinRequestBodyDataRate!.BytesPerSecond.Should().Be(2000);
        limits.MinRequestBodyDataRate.GracePeriod.Should().Be(TimeSpan.FromSeconds(3));
        limits.RequestHeadersTimeout.Should().Be(TimeSpan.FromSeconds(4));
        limits.MaxRequestBufferSize.Should().Be(32768);

        foreach (string option in new[] { "MaxConcurrentPredictions", "MaxConcurrentConnections", "MinRequestBodyBytesPerSecond", "RequestBodyTimeoutSeconds" })
        {
            var bad = () => Serve(model.Path, 256, ($"Serving:{option}", "0"));
            bad.Should().Throw<Exception>().Where(e => e.ToString().Contains($"Serving:{option} must be between"), option);
        }
    }

    /// <summary>
    /// A body trickled over a real socket: under the default minimum rate (300 B/s, the probe's trickle, which Kestrel's own
    /// default of 240 B/s lets through) Kestrel cuts it after the grace period; over it, the body timeout ends it.
    /// Either way the server lets go within seconds.
    /// </summary>
    [Theory]
    [InlineData(30)]
    [InlineData(600)]
    public async Task A_trickled_body_does_not_hold_its_connection(int bytesPer100Ms)
    {
        var address = OverKestrel(Factory(model.Path, 256, ("Serving:MinRequestBodyGraceSeconds", "2"), ("Serving:RequestBodyTimeoutSeconds", "3")));

        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, address.Port);
        var stream = tcp.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes("POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 200000\r\n\r\n{\"images\": [[0"));
        var answer = new byte[4096];
        var read = stream.ReadAsync(answer).AsTask();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        byte[] spaces = Encoding.ASCII.GetBytes(new string(' ', bytesPer100Ms));
        while (!read.IsCompleted && clock.Elapsed < TimeSpan.FromSeconds(15))
        {
            try
            {
                await stream.WriteAsync(spaces);
            }
            catch (IOException)
            {
                break;
            }
            await Task.WhenAny(read, Task.Delay(100));
        }
        int count;
        try
        {
            count = await read.WaitAsync(TimeSpan.FromSeconds(5));
        }
        catch (IOException)
        {
            count = 0;
        }
        clock.Elapsed.Should().BeLessThan(TimeSpan.FromSeconds(10), "the connection is let go, not held while the body trickles");
        if (count > 0) Encoding.ASCII.GetString(answer, 0, count).Should().StartWith("HTTP/1.1 408");
    }

    [Fact]
    public async Task With_an_app_token_requests_without_it_get_401_and_health_stays_open()
    {
        var client = Serve(model.Path, 256, ("APP_API_TOKEN", "s3cret"));
        (await client.GetAsync("/v1/model")).StatusCode.Should().Be(HttpStatusCode.Unauthorized);
        (await client.PostAsync("/v1/predict", new StringContent(Body(1), Encoding.UTF8, "application/json"))).StatusCode.Should().Be(HttpStatusCode.Unauthorized);
        using (var wrong = new HttpRequestMessage(HttpMethod.Get, "/v1/model"))
        {
            wrong.Headers.Add("dapr-api-token", "s3cre7");
            (await client.SendAsync(wrong)).StatusCode.Should().Be(HttpStatusCode.Unauthorized);
        }
        (await client.GetAsync("/health")).StatusCode.Should().Be(HttpStatusCode.OK);

        client.DefaultRequestHeaders.Add("dapr-api-token", "s3cret");
        (await client.GetAsync("/v1/model")).StatusCode.Should().Be(HttpStatusCode.OK);
        (await client.PostAsync("/v1/predict", new StringContent(Body(1), Encoding.UTF8, "application/json"))).StatusCode.Should().Be(HttpStatusCode.OK);

        var open = Serve(model.Path);
        (await open.GetAsync("/v1/model")).StatusCode.Should().Be(HttpStatusCode.OK, "without APP_API_TOKEN nothing is asked");
    }
}
