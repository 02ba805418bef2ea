using System.CommandLine;
using IlgpuVae.GpuKernels;
using static IlgpuVae.Host.Commands.CommandOptions;

namespace IlgpuVae.Host.Commands;

/// <summary>`eval`: the test ELBO, L_k, active units and ELBO surgery of a run (see <see cref="Evaluate"/>).</summary>
internal static class EvalCommand
{
    public static Command Create(TextWriter output, Model.Distributed.Communicator ranks)
    {
        var run = new Argument<string>("RUN_DIR") { Description = "A run folder written by train" };
        var k = new Option<int>("--k") { Description = "Importance samples per image for L_k and NLL = −L_k", DefaultValueFactory = _ => 5000 };
        var examples = new Option<int>("--examples") { Description = "Evaluate only the first N test images (0: all)" };
        var surgery = new Option<bool>("--surgery") { Description = "ELBO surgery: split the average KL into the index-code mutual information and KL(q(z) ‖ p(z)) of the aggregate posterior" };
        var surgerySamples = new Option<int>("--surgery-samples") { Description = "z samples from q(z) for KL(q(z) ‖ p(z)) (0: one per test image)" };
        var accelerator = AcceleratorOption();
        var stream = new Option<bool>("--stream") { Description = "Keep the test images on the host and copy each minibatch to the device (the same results bit for bit; chosen by itself when they do not fit)" };
        var deviceMemory = new Option<int>("--device-memory") { Description = "Plan for at most this many MiB of the accelerator's memory (0: all it offers); test images that no longer fit are streamed", HelpName = "MIB" };
        var samples = new Option<int>("--samples") { Description = "Deep GP runs (dgp): passes through the layers averaged for the test scores", DefaultValueFactory = _ => new DeepGpOptions().Samples };
        var command = new Command("eval", "Test ELBO, rate and distortion, the k-sample bound L_k, NLL and active units of a trained run; of a dgp run, the test log-likelihood and RMSE or error (writes RUN_DIR/eval.json)")
        {
            run, k, examples, surgery, surgerySamples, accelerator, stream, deviceMemory, samples,
        };
        command.SetAction(parse =>
        {
            if (DeepGpTraining.IsRun(parse.GetValue(run)!))
                return DeepGpTraining.Train(new DeepGpOptions
                {
                    Resume = parse.GetValue(run),
                    EvaluateOnly = true,
                    Samples = parse.GetValue(samples),
                    Accelerator = Compute.ParseChoice(parse.GetValue(accelerator)),
                }, output, CancellationToken.None).ExitCode;
            Evaluate.Run(parse.GetValue(run)!, parse.GetValue(k), parse.GetValue(examples), Compute.ParseChoice(parse.GetValue(accelerator)), output,
                parse.GetValue(surgery), parse.GetValue(surgerySamples), ranks, parse.GetValue(stream), parse.GetValue(deviceMemory));
            return 0;
        });
        return command;
    }
}
