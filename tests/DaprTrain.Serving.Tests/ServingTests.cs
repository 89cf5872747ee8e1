using System.Net;
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

    private HttpClient Serve(string? modelPath, int maxImages = 256)
    {
        var factory = new WebApplicationFactory<ModelHost>().WithWebHostBuilder(b =>
        {
            if (modelPath is not null) b.UseSetting("Serving:ModelPath", modelPath);
            b.UseSetting("Serving:MaxImagesPerRequest", maxImages.ToString(System.Globalization.CultureInfo.InvariantCulture));
        });
        _hosts.Add(factory);
        return factory.CreateClient();
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
        using var info = JsonDocument.Parse(await client.GetStringAsync("/v1/model"));
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
        { "application/json", "{\"images\": [" + string.Join(",", Enumerable.Repeat(Row("0"), 5)) + "]}", "5 images exceed Serving:MaxImagesPerRequest (4)" },
        { "application/octet-stream", "", "the body is empty" },
        { "application/octet-stream", new string('a', 785), "785 bytes are not a whole number of 28 x 28 images" },
        { "application/octet-stream", new string('a', 784 * 5), "more than Serving:MaxImagesPerRequest (4) images" },
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
}
