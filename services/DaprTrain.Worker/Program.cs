using DaprTrain.Worker;

var builder = WebApplication.CreateBuilder(args);
builder.AddWorker();
var app = builder.Build();
app.MapWorker();
app.Run();

public partial class Program;
