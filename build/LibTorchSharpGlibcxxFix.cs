// Makes TorchSharp 0.107's libLibTorchSharp.so load on systems whose libstdc++ predates GCC 13
// (Debian 12 stops at GLIBCXX_3.4.30). The library asks for GLIBCXX_3.4.32 for exactly one symbol,
// std::ios_base_library_init, which GCC 13 emits for <iostream> and which is never called at run
// time. Marking that version requirement weak (VER_FLG_WEAK in .gnu.version_r) turns the loader's
// fatal "version not found" into a warning it does not even print. Nothing else is changed.
//
// This file is compiled twice: by MSBuild's RoslynCodeTaskFactory (see the .targets beside it) and
// by the Training tests (DAPRTRAIN_TESTS defined), which exercise the ELF logic on real files.
#nullable enable
using System;
using System.Collections.Generic;
using System.IO;
using System.Text;

namespace DaprTrain.Build
{
    public enum GlibcxxFixOutcome
    {
        NotElf,
        NothingToDo,
        SystemLibraryIsNewEnough,
        SystemLibraryNotFound,
        AlreadyPatched,
        Patched,
    }

    public static class LibTorchSharpGlibcxxFix
    {
        public const string RequiredVersion = "GLIBCXX_3.4.32";
        private const uint ShtGnuVerneed = 0x6ffffffe;
        private const ushort VerFlgWeak = 0x2;

        public static readonly string[] SystemLibstdcxxCandidates =
        {
            "/usr/lib/x86_64-linux-gnu/libstdc++.so.6",
            "/lib/x86_64-linux-gnu/libstdc++.so.6",
            "/usr/lib64/libstdc++.so.6",
            "/lib64/libstdc++.so.6",
            "/usr/lib/libstdc++.so.6",
        };

        /// <summary>The first system libstdc++ found, or null (then nothing is patched: we cannot tell).</summary>
        public static string? FindSystemLibstdcxx()
        {
            foreach (var candidate in SystemLibstdcxxCandidates)
            {
                if (File.Exists(candidate)) return candidate;
            }
            return null;
        }

        /// <summary>True when the library's bytes define the version name (it appears in its string table).</summary>
        public static bool DefinesVersion(string libraryPath, string version)
        {
            byte[] needle = Encoding.ASCII.GetBytes(version + "\0");
            byte[] haystack = File.ReadAllBytes(libraryPath);
            for (int i = 0; i + needle.Length <= haystack.Length; i++)
            {
                int j = 0;
                while (j < needle.Length && haystack[i + j] == needle[j]) j++;
                if (j == needle.Length) return true;
            }
            return false;
        }

        /// <summary>
        /// Patches <paramref name="libraryPath"/> when it needs <see cref="RequiredVersion"/> and the
        /// system libstdc++ at <paramref name="systemLibstdcxx"/> lacks it. The new bytes are written to a
        /// temporary file beside the target and renamed over it, so a hard link into the NuGet cache
        /// is replaced, never written through. The original timestamp is kept so that MSBuild's
        /// incremental copy does not put the unpatched file back on every build.
        /// </summary>
        public static GlibcxxFixOutcome Apply(string libraryPath, string? systemLibstdcxx)
        {
            byte[] image = File.ReadAllBytes(libraryPath);
            List<int>? flagOffsets = FindVersionNeedFlagOffsets(image, RequiredVersion);
            if (flagOffsets == null) return GlibcxxFixOutcome.NotElf;
            if (flagOffsets.Count == 0) return GlibcxxFixOutcome.NothingToDo;

            bool allWeak = true;
            foreach (int offset in flagOffsets)
            {
                if ((ReadU16(image, offset) & VerFlgWeak) == 0) allWeak = false;
            }
            if (allWeak) return GlibcxxFixOutcome.AlreadyPatched;

            if (systemLibstdcxx == null) return GlibcxxFixOutcome.SystemLibraryNotFound;
            if (DefinesVersion(systemLibstdcxx, RequiredVersion))
            {
                return GlibcxxFixOutcome.SystemLibraryIsNewEnough;
            }

            foreach (int offset in flagOffsets)
            {
                WriteU16(image, offset, (ushort)(ReadU16(image, offset) | VerFlgWeak));
            }

            DateTime lastWrite = File.GetLastWriteTimeUtc(libraryPath);
            string temporary = libraryPath + ".glibcxx-fix.tmp";
            File.WriteAllBytes(temporary, image);
            File.SetLastWriteTimeUtc(temporary, lastWrite);
            // Unlink, then rename: a hard link into the NuGet cache loses this name, the cache keeps its bytes.
            // (This file also compiles against netstandard2.0 inside MSBuild, which has no overwriting Move.)
            File.Delete(libraryPath);
            File.Move(temporary, libraryPath);
            return GlibcxxFixOutcome.Patched;
        }

        /// <summary>
        /// Offsets of the vna_flags fields of every .gnu.version_r entry naming <paramref name="version"/>;
        /// null when the bytes are not a little-endian ELF64 file.
        /// </summary>
        public static List<int>? FindVersionNeedFlagOffsets(byte[] image, string version)
        {
            if (image.Length < 64 || image[0] != 0x7f || image[1] != (byte)'E' || image[2] != (byte)'L' || image[3] != (byte)'F'
                || image[4] != 2 /* ELFCLASS64 */ || image[5] != 1 /* little-endian */)
            {
                return null;
            }

            var result = new List<int>();
            long sectionTable = (long)ReadU64(image, 0x28);
            int sectionEntrySize = ReadU16(image, 0x3A);
            int sectionCount = ReadU16(image, 0x3C);
            if (sectionTable <= 0 || sectionEntrySize < 64 || sectionTable + (long)sectionCount * sectionEntrySize > image.Length)
            {
                return null;
            }

            for (int i = 0; i < sectionCount; i++)
            {
                int header = checked((int)(sectionTable + (long)i * sectionEntrySize));
                if (ReadU32(image, header + 4) != ShtGnuVerneed) continue;

                int sectionOffset = checked((int)ReadU64(image, header + 0x18));
                int stringTableIndex = (int)ReadU32(image, header + 0x28);
                int entryCount = (int)ReadU32(image, header + 0x2C);
                int stringsHeader = checked((int)(sectionTable + (long)stringTableIndex * sectionEntrySize));
                int stringsOffset = checked((int)ReadU64(image, stringsHeader + 0x18));

                int need = sectionOffset;
                for (int n = 0; n < entryCount; n++)
                {
                    int auxCount = ReadU16(image, need + 2);
                    int aux = need + (int)ReadU32(image, need + 8);
                    for (int a = 0; a < auxCount; a++)
                    {
                        int nameOffset = stringsOffset + (int)ReadU32(image, aux + 8);
                        if (ReadCString(image, nameOffset) == version) result.Add(aux + 4);
                        int nextAux = (int)ReadU32(image, aux + 12);
                        if (nextAux == 0) break;
                        aux += nextAux;
                    }
                    int nextNeed = (int)ReadU32(image, need + 12);
                    if (nextNeed == 0) break;
                    need += nextNeed;
                }
            }
            return result;
        }

        private static string ReadCString(byte[] image, int offset)
        {
            int end = offset;
            while (end < image.Length && image[end] != 0) end++;
            return Encoding.ASCII.GetString(image, offset, end - offset);
        }

        private static ushort ReadU16(byte[] b, int o) => (ushort)(b[o] | (b[o + 1] << 8));
        private static uint ReadU32(byte[] b, int o) => (uint)(b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24));
        private static ulong ReadU64(byte[] b, int o) => ReadU32(b, o) | ((ulong)ReadU32(b, o + 4) << 32);
        private static void WriteU16(byte[] b, int o, ushort v) { b[o] = (byte)v; b[o + 1] = (byte)(v >> 8); }
    }

#if !DAPRTRAIN_TESTS
    public class PatchLibTorchSharpGlibcxx : Microsoft.Build.Utilities.Task
    {
        [Microsoft.Build.Framework.Required]
        public string Directory { get; set; } = "";

        public override bool Execute()
        {
            if (!System.IO.Directory.Exists(Directory)) return true;
            string? system = LibTorchSharpGlibcxxFix.FindSystemLibstdcxx();
            foreach (string library in System.IO.Directory.EnumerateFiles(Directory, "libLibTorchSharp.so", SearchOption.AllDirectories))
            {
                GlibcxxFixOutcome outcome = LibTorchSharpGlibcxxFix.Apply(library, system);
                var importance = outcome == GlibcxxFixOutcome.Patched
                    ? Microsoft.Build.Framework.MessageImportance.High
                    : Microsoft.Build.Framework.MessageImportance.Low;
                Log.LogMessage(importance, "libLibTorchSharp glibcxx fix: {0} ({1}; system libstdc++: {2})",
                    outcome, library, system ?? "not found");
            }
            return true;
        }
    }
#endif
}
