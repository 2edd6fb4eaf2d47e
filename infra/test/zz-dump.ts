import { Validations } from 'aws-cdk-lib';
import { synth, EXISTING_VPC_CONTEXT } from './helpers';
const s = synth(process.argv[2] === 'demo' ? {} : EXISTING_VPC_CONTEXT);
console.log(JSON.stringify(s.template.toJSON(), null, 1));
void Validations;
