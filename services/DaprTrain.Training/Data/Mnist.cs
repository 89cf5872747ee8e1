namespace DaprTrain.Training.Data;

public sealed record MnistFile(string Name, long GzipSize, string GzipMd5);

/// <summary>MNIST's IDX files: loading from a folder, and the published names and checksums.</summary>
public static class Mnist
{
    public const float Mean = 0.1307f;
    public const float StandardDeviation = 0.3081f;

    public static readonly MnistFile TrainImages = new("train-images-idx3-ubyte", 9_912_422, "f68b3c2dcbeaaa9fbdd348bbdeb94873");
    public static readonly MnistFile TrainLabels = new("train-labels-idx1-ubyte", 28_881, "d53e105ee54ea40749a09fcbcd1e9432");
    public static readonly MnistFile TestImages = new("t10k-images-idx3-ubyte", 1_648_877, "9fb629c4189551a2d022fa330f9573f3");
    public static readonly MnistFile TestLabels = new("t10k-labels-idx1-ubyte", 4_542, "ec29112dd5afa0611ce80d1b7f02629c");

    public static IReadOnlyList<MnistFile> AllFiles { get; } = [TrainImages, TrainLabels, TestImages, TestLabels];

    /// <summary>The file in the folder, gzip or raw, or null.</summary>
    public static string? Locate(string directory, MnistFile file)
    {
        foreach (var candidate in new[] { file.Name + ".gz", file.Name })
        {
            string path = Path.Combine(directory, candidate);
            if (File.Exists(path)) return path;
        }
        return null;
    }

    /// <summary>True when the folder holds at least the test split (images and labels).</summary>
    public static bool HasTestSplit(string directory) =>
        Locate(directory, TestImages) is not null && Locate(directory, TestLabels) is not null;

    public static bool HasTrainSplit(string directory) =>
        Locate(directory, TrainImages) is not null && Locate(directory, TrainLabels) is not null;

    /// <summary>A split as stored: pixels 0..255 (28x28 per image, row-major) and labels 0..9, checked.</summary>
    public static (byte[] Pixels, byte[] Labels) ReadSplit(string directory, bool train)
    {
        var imagesFile = train ? TrainImages : TestImages;
        var labelsFile = train ? TrainLabels : TestLabels;
        string imagesPath = Locate(directory, imagesFile) ?? throw new FileNotFoundException($"{Path.Combine(directory, imagesFile.Name)}(.gz) not found.");
        string labelsPath = Locate(directory, labelsFile) ?? throw new FileNotFoundException($"{Path.Combine(directory, labelsFile.Name)}(.gz) not found.");

        var images = IdxReader.Read(imagesPath, expectedDimensionCount: 3);
        var labels = IdxReader.Read(labelsPath, expectedDimensionCount: 1);
        if (images.Dimensions[1] != 28 || images.Dimensions[2] != 28)
        {
            throw new IdxFormatException(imagesPath, $"wrong dimensions: images are {images.Dimensions[1]}x{images.Dimensions[2]}, MNIST's are 28x28.");
        }
        if (images.Dimensions[0] != labels.Dimensions[0])
        {
            throw new IdxFormatException(labelsPath, $"count mismatch: {labels.Dimensions[0]} labels for {images.Dimensions[0]} images in {imagesPath}.");
        }
        for (int i = 0; i < labels.Data.Length; i++)
        {
            if (labels.Data[i] > 9) throw new IdxFormatException(labelsPath, $"label {labels.Data[i]} at index {i} is not a digit 0-9.");
        }
        return (images.Data, labels.Data);
    }

    /// <summary>
    /// A split as the trainer takes it: features normalised with <see cref="Mean"/> and <see cref="StandardDeviation"/>,
    /// MNIST's, whichever IDX dataset the folder holds (Fashion-MNIST included): every model then takes raw pixels the same
    /// way, and an ONNX export (which carries these constants) needs no record of which dataset it was trained on.
    /// Fashion-MNIST's own statistics (0.2860, 0.3530) would only shift and scale the inputs slightly.
    /// </summary>
    public static LabeledDataset LoadSplit(string directory, bool train, string name = "mnist")
    {
        var (pixels, labels) = ReadSplit(directory, train);
        var features = new float[pixels.Length];
        for (int i = 0; i < features.Length; i++) features[i] = (pixels[i] / 255f - Mean) / StandardDeviation;
        var labelValues = new long[labels.Length];
        for (int i = 0; i < labelValues.Length; i++) labelValues[i] = labels[i];
        return new LabeledDataset(train ? $"{name}-train" : $"{name}-test", features, labelValues, [1, 28, 28], 10);
    }
}
