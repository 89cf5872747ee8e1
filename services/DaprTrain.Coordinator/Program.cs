using DaprTrain.Coordinator;

var builder = WebApplication.CreateBuilder(args);
builder.AddCoordinator();
var app = builder.Build();
app.MapCoordinator();
app.Run();

public partial class Program;
