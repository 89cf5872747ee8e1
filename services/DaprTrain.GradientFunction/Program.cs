using DaprTrain.GradientFunction;

var builder = WebApplication.CreateBuilder(args);
builder.AddGradientFunction();
var app = builder.Build();
app.MapGradientFunction();
app.Run();

public partial class Program;
