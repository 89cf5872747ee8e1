using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using DaprTrain.Fuzz;

namespace DaprTrain.Fuzz.Tests;

/// <summary>
/// Inputs of findings in parsers this branch does not own (tracker issue 14, item 9: reported, each with a
/// <c>finding-*</c> file in the target's corpus folder, for their owners to fix). The property runs skip such inputs
/// and count them; once a parser is fixed, delete its predicate here and the properties cover those inputs again.
/// </summary>
public static partial class KnownFindings
{
    public static Func<byte[], bool>? For(string target) => target switch
    {
        _ => null,
    };

    /// <summary>
    /// corpus/faults/finding-*: worker-N beyond int.MaxValue parses and then makes Validate throw OverflowException;
    /// "NaN" is accepted as a probability; a duration of 310 or more digits is accepted as infinity.
    /// </summary>
    public static bool FaultItemOutOfRange(byte[] input)
    {
        string text = Encoding.UTF8.GetString(input);
        return WorkerBeyondInt().IsMatch(text) || text.Contains("nan", StringComparison.OrdinalIgnoreCase) || LongNumber().IsMatch(text);
    }

    /// <summary>corpus/platforms/finding-null-profile: a null in the platforms array makes LoadAll throw NullReferenceException.</summary>
    public static bool NullPlatformProfile(byte[] input)
    {
        try
        {
            using var document = JsonDocument.Parse(input, new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
            return document.RootElement.ValueKind == JsonValueKind.Object && document.RootElement.EnumerateObject().Any(p =>
                p.Name.Equals("platforms", StringComparison.OrdinalIgnoreCase) && p.Value.ValueKind == JsonValueKind.Array
                && p.Value.EnumerateArray().Any(e => e.ValueKind == JsonValueKind.Null));
        }
        catch (JsonException)
        {
            return false;
        }
    }

    /// <summary>
    /// corpus/prediction/finding-empty-images-amplification: ReadJsonAsync allocates 784 floats per entry of "images"
    /// before it checks that the entries are images, so 256 empty arrays (781 bytes) cost 800 KB.
    /// </summary>
    public static bool EmptyImagesAmplify(byte[] input)
    {
        if (input.Length == 0 || input[0] % 2 != 0) return false;
        try
        {
            using var document = JsonDocument.Parse(input.AsMemory(1));
            return document.RootElement.ValueKind == JsonValueKind.Object && document.RootElement.TryGetProperty("images", out var images)
                && images.ValueKind == JsonValueKind.Array && images.GetArrayLength() <= FuzzTargets.MaxImages
                && 4L * 784 * images.GetArrayLength() > 32L * input.Length;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    [GeneratedRegex(@"worker-[0-9]{10,}")]
    private static partial Regex WorkerBeyondInt();

    [GeneratedRegex(@"[0-9]{300,}")]
    private static partial Regex LongNumber();
}
