// Registers every M2 layer with tfjs serialization, so models that contain them save and load by class name.
import { serialization } from '@tensorflow/tfjs-core';
import { BlockdiagLinear } from './blockdiag-linear.js';
import { GluMonarchMlp } from './glu-monarch-mlp.js';
import { HyenaFilter } from './hyena-filter.js';
import { M2CausalBlock, M2EncoderLayer } from './m2-blocks.js';
import { M2SequenceMixer } from './m2-sequence-mixer.js';

serialization.registerClass(BlockdiagLinear);
serialization.registerClass(HyenaFilter);
serialization.registerClass(M2SequenceMixer);
serialization.registerClass(GluMonarchMlp);
serialization.registerClass(M2EncoderLayer);
serialization.registerClass(M2CausalBlock);
