using System.ComponentModel.DataAnnotations;

namespace DaprTrain.Serving;

/// <summary>Bound from the "Serving" section (appsettings, SERVING__MODELPATH, or --Serving:ModelPath on the command line).</summary>
public sealed class ServingOptions
{
    public const string Section = "Serving";

    /// <summary>The .onnx file written by <c>daprtrain train --export-onnx</c>.</summary>
    [Required(ErrorMessage = "Serving:ModelPath is required: the .onnx file written by 'daprtrain train --export-onnx'.")]
    public string ModelPath { get; set; } = "";

    /// <summary>Images one request may carry; a larger batch is refused rather than queued.</summary>
    [Range(1, 65_536, ErrorMessage = "Serving:MaxImagesPerRequest must be between 1 and 65536.")]
    public int MaxImagesPerRequest { get; set; } = 256;
}
