using System.Buffers.Binary;
using System.IO.Compression;
using DaprTrain.Training.Data;

namespace DaprTrain.Training.Tests;

public sealed class IdxReaderTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("daprtrain-idx-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static byte[] Idx(int dimensionCount, int[] sizes, int dataLength, byte magic0 = 0, byte type = 0x08)
    {
        var bytes = new byte[4 + 4 * sizes.Length + dataLength];
        bytes[0] = magic0;
        bytes[2] = type;
        bytes[3] = (byte)dimensionCount;
        for (int i = 0; i < sizes.Length; i++) BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4 + 4 * i), sizes[i]);
        for (int i = 0; i < dataLength; i++) bytes[4 + 4 * sizes.Length + i] = (byte)(i % 10);
        return bytes;
    }

    private string Write(string name, byte[] bytes, bool gzip = false)
    {
        string path = Path.Combine(_dir, name);
        if (gzip)
        {
            using var file = File.Create(path);
            using var z = new GZipStream(file, CompressionLevel.Fastest);
            z.Write(bytes);
        }
        else
        {
            File.WriteAllBytes(path, bytes);
        }
        return path;
    }

    [Fact]
    public void Reads_the_shared_mnist_test_split()
    {
        using var data = Mnist.LoadSplit(TestData.MnistDirectory, train: false);
        data.Count.Should().Be(10_000);
        data.SampleShape.Should().Equal(1, 28, 28);
        data.Labels.Take(10).Should().Equal(7, 2, 1, 0, 4, 1, 4, 9, 5, 9);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Reads_a_good_file_raw_or_gzip(bool gzip)
    {
        string path = Write("good", Idx(3, [2, 28, 28], 2 * 28 * 28), gzip);
        var array = IdxReader.Read(path, 3);
        array.Dimensions.Should().Equal(2, 28, 28);
        array.Data.Should().HaveCount(2 * 28 * 28);
        array.Data[11].Should().Be(1);
    }

    [Fact]
    public void Truncated_file_names_file_and_problem()
    {
        string path = Write("truncated", Idx(3, [2, 28, 28], 2 * 28 * 28 - 5));
        var act = () => IdxReader.Read(path, 3);
        act.Should().Throw<IdxFormatException>().Where(e => e.Path == path && e.Message.Contains(path) && e.Message.Contains("truncated"));
    }

    [Fact]
    public void Truncated_header_is_reported()
    {
        string path = Write("short-header", Idx(3, [2, 28, 28], 0)[..9]);
        var act = () => IdxReader.Read(path, 3);
        act.Should().Throw<IdxFormatException>().WithMessage("*short-header*truncated*header*");
    }

    [Fact]
    public void Wrong_magic_names_file_and_problem()
    {
        string path = Write("badmagic", Idx(3, [1, 28, 28], 784, magic0: 0x42));
        var act = () => IdxReader.Read(path, 3);
        act.Should().Throw<IdxFormatException>().WithMessage("*badmagic*wrong magic number*");
    }

    [Fact]
    public void Wrong_element_type_is_reported()
    {
        string path = Write("floats", Idx(3, [1, 28, 28], 784, type: 0x0D));
        var act = () => IdxReader.Read(path, 3);
        act.Should().Throw<IdxFormatException>().WithMessage("*floats*unsupported element type*");
    }

    [Fact]
    public void Wrong_dimension_count_names_file_and_problem()
    {
        string path = Write("twodims", Idx(2, [10, 784], 7840));
        var act = () => IdxReader.Read(path, 3);
        act.Should().Throw<IdxFormatException>().WithMessage("*twodims*wrong dimensions*says 2*expected 3*");
    }

    [Fact]
    public void Wrong_image_size_is_reported_for_mnist()
    {
        Write("t10k-images-idx3-ubyte", Idx(3, [2, 20, 20], 800));
        Write("t10k-labels-idx1-ubyte", Idx(1, [2], 2));
        var act = () => Mnist.LoadSplit(_dir, train: false);
        act.Should().Throw<IdxFormatException>().WithMessage("*t10k-images-idx3-ubyte*20x20*28x28*");
    }

    [Fact]
    public void Count_mismatch_between_images_and_labels_is_reported()
    {
        Write("t10k-images-idx3-ubyte", Idx(3, [3, 28, 28], 3 * 784));
        Write("t10k-labels-idx1-ubyte", Idx(1, [2], 2));
        var act = () => Mnist.LoadSplit(_dir, train: false);
        act.Should().Throw<IdxFormatException>().WithMessage("*t10k-labels-idx1-ubyte*count mismatch*2 labels for 3 images*");
    }

    [Fact]
    public void Trailing_bytes_are_reported()
    {
        string path = Write("long", Idx(1, [4], 6));
        var act = () => IdxReader.Read(path, 1);
        act.Should().Throw<IdxFormatException>().WithMessage("*long*2 unexpected bytes*");
    }

    [Fact]
    public void Corrupt_gzip_is_reported()
    {
        // A deflate block of the reserved type 3 is invalid.
        string path = Write("broken.gz", [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0x07, 0xff, 0xff, 0xff]);
        var act = () => IdxReader.Read(path, 1);
        act.Should().Throw<IdxFormatException>().WithMessage("*broken.gz*gzip*");
    }
}
