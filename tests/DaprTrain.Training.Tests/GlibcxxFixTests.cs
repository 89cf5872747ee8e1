using DaprTrain.Build;

namespace DaprTrain.Training.Tests;

/// <summary>The build step that lets TorchSharp load on Debian 12, run on copies of the real library.</summary>
public sealed class GlibcxxFixTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("daprtrain-elf-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string PristineLibrary()
    {
        string root = Environment.GetEnvironmentVariable("NUGET_PACKAGES")
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        string path = Path.Combine(root, "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        File.Exists(path).Should().BeTrue($"the TorchSharp package should be restored at {path}");
        return path;
    }

    private string Copy(string name = "libLibTorchSharp.so")
    {
        string target = Path.Combine(_dir, name);
        File.Copy(PristineLibrary(), target);
        return target;
    }

    private string FakeSystemLibrary(bool hasVersion)
    {
        string path = Path.Combine(_dir, hasVersion ? "new-libstdc++.so.6" : "old-libstdc++.so.6");
        File.WriteAllBytes(path, System.Text.Encoding.ASCII.GetBytes(hasVersion
            ? "\0GLIBCXX_3.4.30\0GLIBCXX_3.4.31\0GLIBCXX_3.4.32\0"
            : "\0GLIBCXX_3.4.29\0GLIBCXX_3.4.30\0"));
        return path;
    }

    [Fact]
    public void The_shipped_library_needs_the_version_non_weak()
    {
        var bytes = File.ReadAllBytes(PristineLibrary());
        var offsets = LibTorchSharpGlibcxxFix.FindVersionNeedFlagOffsets(bytes, LibTorchSharpGlibcxxFix.RequiredVersion);
        offsets.Should().ContainSingle();
        (bytes[offsets![0]] & 2).Should().Be(0);
    }

    [Fact]
    public void Old_libstdcxx_gets_the_requirement_marked_weak_and_nothing_else_changes()
    {
        string library = Copy();
        var before = File.ReadAllBytes(library);
        var timestamp = File.GetLastWriteTimeUtc(library);

        LibTorchSharpGlibcxxFix.Apply(library, FakeSystemLibrary(hasVersion: false)).Should().Be(GlibcxxFixOutcome.Patched);

        var after = File.ReadAllBytes(library);
        int flagOffset = LibTorchSharpGlibcxxFix.FindVersionNeedFlagOffsets(after, LibTorchSharpGlibcxxFix.RequiredVersion)!.Single();
        (after[flagOffset] & 2).Should().Be(2);
        Enumerable.Range(0, before.Length).Where(i => before[i] != after[i]).Should().Equal(flagOffset);
        File.GetLastWriteTimeUtc(library).Should().Be(timestamp, "MSBuild's incremental copy must not bring the original back");

        LibTorchSharpGlibcxxFix.Apply(library, FakeSystemLibrary(hasVersion: false)).Should().Be(GlibcxxFixOutcome.AlreadyPatched);
    }

    [Fact]
    public void New_enough_libstdcxx_leaves_the_library_alone()
    {
        string library = Copy();
        var before = File.ReadAllBytes(library);
        LibTorchSharpGlibcxxFix.Apply(library, FakeSystemLibrary(hasVersion: true)).Should().Be(GlibcxxFixOutcome.SystemLibraryIsNewEnough);
        File.ReadAllBytes(library).Should().Equal(before);
    }

    [Fact]
    public void A_hard_linked_copy_is_replaced_not_written_through()
    {
        string original = Copy("cache-copy.so");
        string linked = Path.Combine(_dir, "libLibTorchSharp.so");
        var ln = System.Diagnostics.Process.Start("ln", [original, linked]);
        ln.WaitForExit();
        ln.ExitCode.Should().Be(0);
        var before = File.ReadAllBytes(original);

        LibTorchSharpGlibcxxFix.Apply(linked, FakeSystemLibrary(hasVersion: false)).Should().Be(GlibcxxFixOutcome.Patched);

        File.ReadAllBytes(original).Should().Equal(before, "the other name of the hard link (the NuGet cache) keeps its bytes");
        File.ReadAllBytes(linked).Should().NotEqual(before);
    }

    [Fact]
    public void Not_an_elf_file_is_left_alone()
    {
        string path = Path.Combine(_dir, "libLibTorchSharp.so");
        File.WriteAllText(path, "not an ELF image at all, just text long enough to look at......");
        LibTorchSharpGlibcxxFix.Apply(path, FakeSystemLibrary(hasVersion: false)).Should().Be(GlibcxxFixOutcome.NotElf);
    }

    [Fact]
    public void The_library_in_this_test_output_loads()
    {
        // Every torch call in this suite depends on it; this names the cause if it ever breaks.
        var act = () => TorchRuntime.EnsureInitialised();
        act.Should().NotThrow();
        TorchSharp.torch.ones(3).sum().item<float>().Should().Be(3f);
    }
}
