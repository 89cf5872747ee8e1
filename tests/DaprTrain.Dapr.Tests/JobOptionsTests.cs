using System.ComponentModel.DataAnnotations;

namespace DaprTrain.Dapr.Tests;

/// <summary>Job:Dataset and Job:Model as the services bind them: checked at start, with the reason.</summary>
public sealed class JobOptionsTests
{
    private static List<string> Problems(TrainingJobOptions job)
    {
        var results = new List<ValidationResult>();
        Validator.TryValidateObject(job, new ValidationContext(job), results, validateAllProperties: true);
        return results.Select(r => r.ErrorMessage ?? "").ToList();
    }

    [Fact]
    public void Datasets_and_models_are_the_known_ones()
    {
        Problems(new TrainingJobOptions { Dataset = "fashion-mnist", DataDir = Path.GetTempPath(), Model = "resnet" }).Should().BeEmpty();
        Problems(new TrainingJobOptions { Dataset = "imagenet" }).Should().ContainSingle().Which.Should().Contain("Dataset");
        Problems(new TrainingJobOptions { Model = "vgg" }).Should().ContainSingle().Which.Should().Contain("Model");
    }

    [Fact]
    public void Synthetic_data_with_a_data_folder_is_a_contradiction_that_is_named()
    {
        Problems(new TrainingJobOptions { Dataset = "synthetic", DataDir = Path.GetTempPath() })
            .Should().ContainSingle().Which.Should().Contain("Job:Dataset synthetic reads no files");
        using var data = new TrainingJobOptions { Dataset = "synthetic" }.LoadData();
        data.Description.Should().StartWith("synthetic");
    }

    [Fact]
    public void Fashion_mnist_without_a_folder_is_looked_for_on_this_machine_and_its_absence_named()
    {
        var (directory, problem) = TrainingJobOptionsExtensions.LocateFashionMnist(name => name == "DAPRTRAIN_FASHION_MNIST" ? "/nonexistent/fashion" : null);
        directory.Should().BeNull();
        problem.Should().Be("DAPRTRAIN_FASHION_MNIST: folder '/nonexistent/fashion' does not exist.");
    }

    [Fact]
    public void The_publish_api_is_http_or_grpc_and_anything_else_is_named()
    {
        new TrainingJobOptions().PublishesOverHttp.Should().BeTrue("HTTP by default");
        Problems(new TrainingJobOptions { PublishApi = "grpc" }).Should().BeEmpty();
        new TrainingJobOptions { PublishApi = "grpc" }.PublishesOverHttp.Should().BeFalse();
        Problems(new TrainingJobOptions { PublishApi = "HTTP" }).Should().ContainSingle().Which.Should().Be(
            "Job:PublishApi is 'HTTP': give http (the sidecar's HTTP publish API, the default) or grpc (its gRPC PublishEvent).");
    }
}
