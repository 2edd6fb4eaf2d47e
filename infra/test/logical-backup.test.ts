import * as assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import validator from 'asl-validator';
import * as iam from 'aws-cdk-lib/aws-iam';
import { LOGICAL_BACKUP_INPUT_HELP } from '../lib/logical-backup';
import { aslFromTemplate, execute, lambdaError } from './asl';
import { EXISTING_VPC_CONTEXT, synth } from './helpers';

const { template, stack } = synth();
const lb = stack.snapshot.logicalBackup;
const id = (c: { node: { defaultChild?: unknown } }) => stack.getLogicalId(c.node.defaultChild as never);
const resources = template.toJSON().Resources as Record<string, any>;
const smId = id(lb.stateMachine);
const asl = () => aslFromTemplate(template.toJSON() as never, smId);
const REQUEST = { action: 'logical-backup', scheduledTime: '2026-11-22T02:30:00Z' };

/** What runTask.sync returns when the task has stopped: the DescribeTasks task, PascalCase. */
function stoppedTask(exitCode: number) {
  return {
    TaskArn: 'arn:aws:ecs:us-east-1:123456789012:task/pgsteward/0123456789abcdef',
    LastStatus: 'STOPPED',
    StoppedReason: 'Essential container in task exited',
    Containers: [{ Name: 'logical-backup', ExitCode: exitCode }],
  };
}

/** A Dump handler answering from a script (the last entry repeats); records the RunTask parameters. */
function dumpHandler(script: Array<() => unknown>) {
  const calls: any[] = [];
  const handler = async (input: any) => {
    calls.push(input);
    return script[Math.min(calls.length, script.length) - 1]();
  };
  return { handler, calls };
}

describe('Fargate cluster and task', () => {
  test('the task definition: Fargate, awsvpc, 1 vCPU / 2 GB, same image as the function, read-only root with /tmp', () => {
    const td = resources[id(lb.taskDefinition)].Properties;
    assert.deepEqual(td.RequiresCompatibilities, ['FARGATE']);
    assert.equal(td.NetworkMode, 'awsvpc');
    assert.deepEqual([td.Cpu, td.Memory], ['1024', '2048']);
    assert.deepEqual(td.RuntimePlatform, { CpuArchitecture: 'X86_64', OperatingSystemFamily: 'LINUX' });
    assert.equal(td.ContainerDefinitions.length, 1);
    const c = td.ContainerDefinitions[0];
    assert.equal(c.Name, 'logical-backup');
    assert.equal(c.Essential, true);
    assert.equal(c.ReadonlyRootFilesystem, true);
    assert.deepEqual(c.MountPoints, [{ ContainerPath: '/tmp', ReadOnly: false, SourceVolume: 'tmp' }]);
    const imageFn = resources[id(stack.snapshot.logicalBackupFunction)].Properties;
    assert.deepEqual(c.Image, imageFn.Code.ImageUri, 'the same image as the logical-backup function');
    assert.equal(c.LogConfiguration.LogDriver, 'awslogs');
    assert.deepEqual(c.LogConfiguration.Options['awslogs-group'], { Ref: id(lb.taskLogGroup) });
  });

  test('the container gets the function\'s environment plus AWS_REGION, and never the task event', () => {
    const c = resources[id(lb.taskDefinition)].Properties.ContainerDefinitions[0];
    const env = Object.fromEntries(c.Environment.map((e: { Name: string; Value: unknown }) => [e.Name, e.Value]));
    const fnEnv = resources[id(stack.snapshot.logicalBackupFunction)].Properties.Environment.Variables;
    assert.deepEqual(env, { ...fnEnv, AWS_REGION: { Ref: 'AWS::Region' } });
    assert.equal(env.PGSTEWARD_TASK_EVENT, undefined);
  });

  test('an ECS cluster in the stack; arm64 builds an ARM64 task', () => {
    template.resourceCountIs('AWS::ECS::Cluster', 1);
    synth({ architecture: 'arm64' }).template.hasResourceProperties('AWS::ECS::TaskDefinition', {
      RuntimePlatform: { CpuArchitecture: 'ARM64', OperatingSystemFamily: 'LINUX' },
    });
  });

  test('the state machine may run this task definition and pass exactly its two roles', () => {
    const roleId = id(lb.stateMachine.role as iam.Role);
    const statements = Object.values(template.findResources('AWS::IAM::Policy'))
      .filter((p) => p.Properties.Roles.some((r: { Ref: string }) => r.Ref === roleId))
      .flatMap((p) => p.Properties.PolicyDocument.Statement);
    const find = (action: string) => statements.filter((s) => ([] as string[]).concat(s.Action).includes(action));
    assert.deepEqual(find('ecs:RunTask').map((s) => s.Resource), [{ Ref: id(lb.taskDefinition) }]);
    assert.deepEqual(new Set(find('iam:PassRole')[0].Resource.map((r: any) => r['Fn::GetAtt'][0])),
      new Set([id(lb.taskDefinition.taskRole as iam.Role), id(lb.taskDefinition.executionRole as iam.Role)]));
    assert.match(JSON.stringify(find('events:PutRule')[0].Resource), /rule\/StepFunctionsGetEventsForECSTaskRule/);
  });
});

describe('LogicalBackup definition', () => {
  test('is valid ASL (asl-validator)', () => {
    const { isValid, errorsText } = validator(asl());
    assert.ok(isValid, errorsText('\n'));
  });

  for (const [name, context] of [['demo VPC', {}], ['existing VPC', EXISTING_VPC_CONTEXT]] as const) {
    test(`${name}: Dump runs the task with runTask.sync in the private subnets, no public IP, the request in PGSTEWARD_TASK_EVENT`, () => {
      const s = synth(context);
      const sl = s.stack.snapshot.logicalBackup;
      const definition = aslFromTemplate(s.template.toJSON() as never, s.stack.getLogicalId(sl.stateMachine.node.defaultChild as never));
      const dump = (definition.States as Record<string, any>).Dump;
      assert.equal(dump.Resource, 'arn:aws:states:::ecs:runTask.sync');
      assert.equal(dump.Parameters.LaunchType, 'FARGATE');
      assert.equal(dump.Parameters.TaskDefinition, sl.taskDefinition.family);
      assert.match(dump.Parameters.Cluster, new RegExp(s.stack.getLogicalId(sl.cluster.node.defaultChild as never)));
      const vpcConfig = dump.Parameters.NetworkConfiguration.AwsvpcConfiguration;
      assert.notEqual(vpcConfig.AssignPublicIp, 'ENABLED');
      const expectedSubnets = name === 'existing VPC' ? EXISTING_VPC_CONTEXT.privateSubnetIds.split(',') : undefined;
      if (expectedSubnets) assert.deepEqual(vpcConfig.Subnets, expectedSubnets);
      else assert.equal(vpcConfig.Subnets.length, 2);
      assert.equal(vpcConfig.SecurityGroups.length, 1);
      assert.deepEqual(dump.Parameters.Overrides, {
        ContainerOverrides: [{ Name: 'logical-backup', Environment: [{ Name: 'PGSTEWARD_TASK_EVENT', 'Value.$': 'States.JsonToString($)' }] }],
      });
    });
  }

  test('states and routing: one retry of a failed task, everything else caught', () => {
    const definition = asl();
    const s = definition.States as Record<string, any>;
    assert.equal(definition.StartAt, 'CheckInput');
    assert.deepEqual(Object.keys(s).sort(), ['BackupFailed', 'CheckInput', 'Done', 'Dump', 'InvalidInput']);
    assert.equal(s.CheckInput.Default, 'Dump');
    assert.deepEqual(s.Dump.Retry, [
      { ErrorEquals: ['States.Timeout'], MaxAttempts: 0 },
      { ErrorEquals: ['States.TaskFailed'], IntervalSeconds: 60, MaxAttempts: 1 },
    ]);
    assert.deepEqual(s.Dump.Catch, [{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'BackupFailed' }]);
    assert.equal(s.Dump.TimeoutSeconds, 12 * 3600);
    assert.deepEqual(s.BackupFailed, { Type: 'Fail', ErrorPath: '$.error.Error', CausePath: '$.error.Cause' });
    assert.equal(s.Dump.Next, 'Done');
  });

  test('Standard type, ALL-level logs with execution data in its own vended-logs group', () => {
    template.hasResourceProperties('AWS::StepFunctions::StateMachine', {
      StateMachineType: 'STANDARD',
      LoggingConfiguration: { Level: 'ALL', IncludeExecutionData: true, Destinations: [{ CloudWatchLogsLogGroup: { LogGroupArn: { 'Fn::GetAtt': [id(lb.logGroup), 'Arn'] } } }] },
    });
    template.hasResourceProperties('AWS::Logs::LogGroup', { LogGroupName: '/aws/vendedlogs/states/Test-logical-backup', RetentionInDays: 30 });
  });
});

describe('LogicalBackup execution (aws-local-stepfunctions)', () => {
  test('success: the request reaches the container as JSON, the task ARN is in the output', async () => {
    const { handler, calls } = dumpHandler([() => stoppedTask(0)]);
    const run = await execute(asl(), REQUEST, { handlers: { Dump: handler } });
    assert.equal(run.status, 'SUCCEEDED', run.cause);
    assert.equal(calls.length, 1);
    const env = calls[0].Overrides.ContainerOverrides[0].Environment;
    assert.deepEqual(env.map((e: any) => e.Name), ['PGSTEWARD_TASK_EVENT']);
    assert.deepEqual(JSON.parse(env[0].Value), REQUEST);
    assert.deepEqual(run.output, { ...REQUEST, task: { taskArn: stoppedTask(0).TaskArn } });
    assert.deepEqual(run.path, ['CheckInput', 'Dump', 'Done']);
  });

  test('a failed task is retried once, and the second run can succeed', async () => {
    const { handler, calls } = dumpHandler([
      () => { throw lambdaError('States.TaskFailed', JSON.stringify(stoppedTask(1))); },
      () => stoppedTask(0),
    ]);
    const run = await execute(asl(), REQUEST, { handlers: { Dump: handler }, retryIntervals: { Dump: 0 } });
    assert.equal(run.status, 'SUCCEEDED', run.cause);
    assert.equal(calls.length, 2);
    assert.deepEqual(calls[1], calls[0], 'the retry runs the same request');
  });

  test('a task that fails twice ends in BackupFailed with the ECS error and cause', async () => {
    const cause = JSON.stringify(stoppedTask(1));
    const { handler, calls } = dumpHandler([() => { throw lambdaError('States.TaskFailed', cause); }]);
    const run = await execute(asl(), REQUEST, { handlers: { Dump: handler }, retryIntervals: { Dump: 0 } });
    assert.equal(run.status, 'FAILED');
    assert.equal(calls.length, 2);
    assert.equal(run.error, 'States.TaskFailed');
    assert.equal(run.cause, cause);
    assert.equal(run.path.at(-1), 'BackupFailed');
  });

  test('States.TaskFailed is a wildcard: an ECS error (no capacity, say) is retried once too', async () => {
    const { handler, calls } = dumpHandler([() => { throw lambdaError('ECS.AmazonECSException', 'Capacity is unavailable at this time'); }]);
    const run = await execute(asl(), REQUEST, { handlers: { Dump: handler }, retryIntervals: { Dump: 0 } });
    assert.equal(run.status, 'FAILED');
    assert.equal(calls.length, 2);
    assert.equal(run.error, 'ECS.AmazonECSException');
    assert.equal(run.path.at(-1), 'BackupFailed');
  });

  test('a dump that timed out (12 hours) is not retried: caught, BackupFailed', async () => {
    const { handler, calls } = dumpHandler([() => { throw lambdaError('States.Timeout', 'Task timed out'); }]);
    const run = await execute(asl(), REQUEST, { handlers: { Dump: handler }, retryIntervals: { Dump: 0 } });
    assert.equal(run.status, 'FAILED');
    assert.equal(calls.length, 1);
    assert.equal(run.error, 'States.Timeout');
    assert.deepEqual(run.path, ['CheckInput', 'Dump', 'BackupFailed']);
  });

  const badInputs: Array<[string, unknown]> = [
    ['an empty input', {}],
    ['another action', { action: 'snapshot' }],
    ['a non-string action', { action: 1 }],
  ];
  for (const [what, input] of badInputs) {
    test(`${what} fails at the first state, saying what to send, and starts no task`, async () => {
      const { handler, calls } = dumpHandler([() => stoppedTask(0)]);
      const run = await execute(asl(), input, { handlers: { Dump: handler } });
      assert.equal(run.status, 'FAILED');
      assert.equal(calls.length, 0);
      assert.equal(run.error, 'InvalidInput');
      assert.equal(run.cause, LOGICAL_BACKUP_INPUT_HELP);
    });
  }
});
