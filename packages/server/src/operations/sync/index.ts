// The Cognito Sync operations cognisync serves: all 17 of the 2014-06-30 model.
import type { Operation } from '../operation.js';
import BulkPublish from './bulk-publish.js';
import DeleteDataset from './delete-dataset.js';
import DescribeDataset from './describe-dataset.js';
import DescribeIdentityPoolUsage from './describe-identity-pool-usage.js';
import DescribeIdentityUsage from './describe-identity-usage.js';
import GetBulkPublishDetails from './get-bulk-publish-details.js';
import GetCognitoEvents from './get-cognito-events.js';
import GetIdentityPoolConfiguration from './get-identity-pool-configuration.js';
import ListDatasets from './list-datasets.js';
import ListIdentityPoolUsage from './list-identity-pool-usage.js';
import ListRecords from './list-records.js';
import RegisterDevice from './register-device.js';
import SetCognitoEvents from './set-cognito-events.js';
import SetIdentityPoolConfiguration from './set-identity-pool-configuration.js';
import SubscribeToDataset from './subscribe-to-dataset.js';
import UnsubscribeFromDataset from './unsubscribe-from-dataset.js';
import UpdateRecords from './update-records.js';

export const syncOperations: readonly Operation[] = [
  BulkPublish, DeleteDataset, DescribeDataset, DescribeIdentityPoolUsage, DescribeIdentityUsage, GetBulkPublishDetails,
  GetCognitoEvents, GetIdentityPoolConfiguration, ListDatasets, ListIdentityPoolUsage, ListRecords, RegisterDevice,
  SetCognitoEvents, SetIdentityPoolConfiguration, SubscribeToDataset, UnsubscribeFromDataset, UpdateRecords,
];
