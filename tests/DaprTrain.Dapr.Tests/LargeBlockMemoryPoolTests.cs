using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using DaprTrain.Dapr.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace DaprTrain.Dapr.Tests;

/// <summary>
/// The services' socket read blocks (issue 16: a 540 kB delivery took 132 reads of 4 KB and as many one-byte peeks): a
/// body read through Kestrel in them arrives whole and exact, a block is never handed to two renters, what the pool keeps
/// is bounded, and a block size out of range is refused at start naming the setting.
/// </summary>
public class LargeBlockMemoryPoolTests
{
    [Fact]
    public async Task A_body_many_blocks_long_arrives_exact_through_Kestrel_reading_into_the_large_blocks()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddSocketReadBlocks(new ConfigurationBuilder().Build());
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.WebHost.ConfigureKestrel(k => k.Limits.MaxRequestBodySize = 4 * 1024 * 1024);
        await using var app = builder.Build();
        app.MapPost("/echo-hash", async (HttpRequest request) =>
        {
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var buffer = new byte[8192];
            long length = 0;
            int read;
            while ((read = await request.Body.ReadAsync(buffer)) > 0)
            {
                hash.AppendData(buffer, 0, read);
                length += read;
            }
            return Results.Text($"{length}:{Convert.ToHexString(hash.GetHashAndReset())}");
        });
        await app.StartAsync();
        var factory = (LargeBlockMemoryPoolFactory)app.Services.GetRequiredService<IMemoryPoolFactory<byte>>();
        factory.BlockSize.Should().Be(LargeBlockMemoryPool.DefaultBlockSize, "the default when Hosting:SocketReadBlockBytes is not set");

        var body = new byte[1_500_000 + 17];
        new Random(16).NextBytes(body);
        using var client = new HttpClient { BaseAddress = new Uri(app.Urls.First()) };
        long before = factory.Rented;
        for (int i = 0; i < 3; i++)
        {
            var answer = await (await client.PostAsync("/echo-hash", new ByteArrayContent(body))).Content.ReadAsStringAsync();
            answer.Should().Be($"{body.Length}:{Convert.ToHexString(SHA256.HashData(body))}", "every byte of the body, in order, once");
        }
        factory.Rented.Should().BeGreaterThan(before, "Kestrel's socket transport reads into this factory's blocks, not its own pool's");
        await app.StopAsync();
    }

    [Fact]
    public void A_rental_disposed_twice_even_late_gives_its_block_back_once_so_two_renters_never_share_one()
    {
        using var pool = new LargeBlockMemoryPool(4096, retainedBlocks: 8);
        var first = pool.Rent();
        first.Dispose();
        var second = pool.Rent();
        second.Memory.Span.Fill(2);
        first.Dispose();
        pool.Retained.Should().Be(0, "the late second Dispose of the first rental returns nothing: its block is the second rental's now");
        using var third = pool.Rent();
        third.Memory.Span.Fill(3);
        second.Memory.Span.ToArray().Should().OnlyContain(x => x == 2, "what one renter writes no other renter's block holds");
        var afterUse = () => first.Memory;
        afterUse.Should().Throw<ObjectDisposedException>("a rental given back holds no block any more");
        second.Dispose();
    }

    [Fact]
    public void The_pools_of_one_factory_share_their_free_blocks_and_their_bound()
    {
        var factory = new LargeBlockMemoryPoolFactory(4096, retainedBlocks: 3);
        using var a = factory.Create();
        using var b = factory.Create();
        var rented = Enumerable.Range(0, 4).Select(_ => a.Rent()).Concat(Enumerable.Range(0, 4).Select(_ => b.Rent())).ToList();
        rented.ForEach(block => block.Dispose());
        factory.Retained.Should().Be(3, "Kestrel makes a pool per I/O queue and endpoint: the bound is the service's, not each pool's");
        factory.Rented.Should().Be(8);
    }

    [Fact]
    public void The_pool_keeps_at_most_its_retained_blocks_whatever_was_rented_at_once()
    {
        using var pool = new LargeBlockMemoryPool(4096, retainedBlocks: 4);
        var rented = Enumerable.Range(0, 10).Select(_ => pool.Rent()).ToList();
        rented.ForEach(block => block.Dispose());
        pool.Retained.Should().Be(4, "the 6 others go to the GC");
        pool.MaxBufferSize.Should().Be(4096);
    }

    [Fact]
    public void A_rental_larger_than_a_block_is_refused_naming_the_block_size()
    {
        using var pool = new LargeBlockMemoryPool(8192);
        var act = () => pool.Rent(8193);
        act.Should().Throw<ArgumentOutOfRangeException>().WithMessage("*holds 8192 bytes*");
    }

    [Theory]
    [InlineData("4095")]
    [InlineData("1048577")]
    [InlineData("-1")]
    [InlineData("64k")]
    public void A_block_size_out_of_range_is_refused_at_start_naming_the_setting(string configured)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { [DaprHosting.SocketReadBlockKey] = configured }).Build();
        var act = () => new ServiceCollection().AddSocketReadBlocks(configuration);
        act.Should().Throw<InvalidOperationException>().WithMessage($"Hosting:SocketReadBlockBytes is '{configured}'*4096 to 1048576*");
    }

    [Fact]
    public void Zero_leaves_Kestrel_its_own_pool_and_a_size_in_range_is_taken()
    {
        static IServiceCollection With(string value) => new ServiceCollection().AddSocketReadBlocks(
            new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { [DaprHosting.SocketReadBlockKey] = value }).Build());
        With("0").Should().NotContain(d => d.ServiceType == typeof(IMemoryPoolFactory<byte>));
        var factory = With("131072").Single(d => d.ServiceType == typeof(IMemoryPoolFactory<byte>)).ImplementationInstance;
        factory.Should().BeOfType<LargeBlockMemoryPoolFactory>().Which.BlockSize.Should().Be(131072);
    }
}
