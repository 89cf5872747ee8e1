using DaprTrain.Tests.Shared;
using DaprTrain.Dapr;
using DaprTrain.ParameterServer;
using DaprTrain.Worker;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.Options;

namespace DaprTrain.Services.Tests;

/// <summary>Job:TorchThreads (issue 16): out of range stops a service at start, saying the range; a valid value is what torch runs on.</summary>
public class TorchThreadsOptionTests
{
    public static TheoryData<string> Bad => new() { "-1", (Environment.ProcessorCount + 1).ToString(System.Globalization.CultureInfo.InvariantCulture) };

    [Theory]
    [MemberData(nameof(Bad))]
    public async Task Out_of_range_stops_the_worker_and_the_server_at_start(string value)
    {
        string message = $"*Job:TorchThreads must be between 1 and {Environment.ProcessorCount}, the cores this process has, or 0 for libtorch's default (got {value})*";
        KeyValuePair<string, string?>[] settings = [new("Job:DisableTrainingLoop", "true"), new("Job:TorchThreads", value)];
        (await HostStartup.FailureAsync("DaprTrain.Worker", b => b.AddWorker(), settings)).Should().BeOfType<OptionsValidationException>().Which.Message.Should().Match(message);
        (await HostStartup.FailureAsync("DaprTrain.ParameterServer", b => b.AddParameterServer(), settings)).Should().BeOfType<OptionsValidationException>().Which.Message.Should().Match(message);
    }

    [Fact]
    public void The_default_is_one_thread_and_a_trainer_of_the_job_runs_on_it()
    {
        var job = new TrainingJobOptions();
        job.TorchThreads.Should().Be(1);
        job.Validate(new System.ComponentModel.DataAnnotations.ValidationContext(job)).Should().BeEmpty();
        job.Trainer();
        TorchSharp.torch.get_num_threads().Should().Be(1);
    }
}
