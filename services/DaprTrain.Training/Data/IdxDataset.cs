namespace DaprTrain.Training.Data;

/// <summary>
/// A dataset stored as MNIST's four IDX files (the same names, 28x28 grey images, labels 0..9): its name on the command
/// line, where it may already be on this machine, where it can be downloaded and the published checksums of its files.
/// </summary>
/// <param name="Name">The --dataset value and the cache folder's name.</param>
/// <param name="Title">The name in messages.</param>
/// <param name="Files">Train images, train labels, test images, test labels, with the published size and MD5 of each .gz.</param>
/// <param name="DirectoryEnvironmentVariable">The variable that names a folder holding the files.</param>
/// <param name="SystemDirectory">Where an operating-system package installs the files, or null when none does.</param>
/// <param name="Package">That package's name, for the message that says how to get the data.</param>
/// <param name="Mirrors">Download bases, tried in order; every file is checked against its published size and MD5.</param>
/// <param name="MirrorEnvironmentVariable">The variable that replaces <paramref name="Mirrors"/> with one base URL.</param>
public sealed record IdxDataset(
    string Name,
    string Title,
    IReadOnlyList<MnistFile> Files,
    string DirectoryEnvironmentVariable,
    string? SystemDirectory,
    string? Package,
    IReadOnlyList<Uri> Mirrors,
    string MirrorEnvironmentVariable)
{
    /// <summary>MNIST: DAPRTRAIN_DATA_DIR, no system package (Debian ships none with the IDX files), downloads from two mirrors.</summary>
    public static IdxDataset Mnist { get; } = new(
        "mnist", "MNIST", Data.Mnist.AllFiles, MnistLocator.DataDirectoryEnvironmentVariable, SystemDirectory: null, Package: null,
        MnistDownloader.DefaultMirrors, MnistDownloader.MirrorEnvironmentVariable);

    /// <summary>
    /// Fashion-MNIST (Xiao, Rasul and Vollgraf, Zalando Research, MIT licence): 60,000 train and 10,000 test images of
    /// ten kinds of clothing. Debian's <c>dataset-fashion-mnist</c> installs it in /usr/share/datasets/fashion-mnist.
    /// The MD5s are the ones zalandoresearch/fashion-mnist's README publishes (torchvision checks the same). The sizes
    /// are the published files' (26,421,880 bytes for the train images, as Keras reports its download); Debian's
    /// copies are those files with the name field taken out of the gzip header (each is shorter by the name and its
    /// terminating zero, and inflates to the same bytes), so they do not match the MD5s and are read as they are.
    /// </summary>
    public static IdxDataset FashionMnist { get; } = new(
        "fashion-mnist", "Fashion-MNIST",
        [
            new("train-images-idx3-ubyte", 26_421_880, "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
            new("train-labels-idx1-ubyte", 29_515, "25c81989df183df01b3e8a0aad5dffbe"),
            new("t10k-images-idx3-ubyte", 4_422_102, "bef4ecab320f06d8554ea6380940ec79"),
            new("t10k-labels-idx1-ubyte", 5_148, "bb300cfdad3c16e7a12a480ee83cd310"),
        ],
        "DAPRTRAIN_FASHION_MNIST",
        "/usr/share/datasets/fashion-mnist",
        "dataset-fashion-mnist",
        [
            new("https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/"),
            new("https://storage.googleapis.com/tensorflow/tf-keras-datasets/"),
        ],
        "DAPRTRAIN_FASHION_MNIST_MIRROR");

    public static IReadOnlyList<IdxDataset> All { get; } = [Mnist, FashionMnist];

    public static IdxDataset? Find(string name) => All.FirstOrDefault(d => string.Equals(d.Name, name, StringComparison.OrdinalIgnoreCase));

    /// <summary>The user cache folder for this dataset: $XDG_CACHE_HOME (or ~/.cache)/daprtrain/NAME.</summary>
    public string DefaultCacheDirectory()
    {
        string? xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        string root = !string.IsNullOrEmpty(xdg)
            ? xdg
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        return Path.Combine(root, "daprtrain", Name);
    }
}
