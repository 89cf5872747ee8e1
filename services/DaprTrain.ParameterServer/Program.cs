using DaprTrain.ParameterServer;

var builder = WebApplication.CreateBuilder(args);
builder.AddParameterServer();
var app = builder.Build();
app.MapParameterServer();
app.Run();

public partial class Program;
